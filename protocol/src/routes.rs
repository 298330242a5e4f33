//! The route table of the contract. The server dispatches on it, and a test holds it equal to
//! the paths of the OpenAPI document.

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// `Authorization: Bearer <admin token>`.
    Admin,
    /// `Authorization: Bearer <poll token>` of the request named in the path.
    PollToken,
    /// No token.
    None,
}

/// Every route of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteId {
    ImportAccounts,
    ListAccounts,
    GetAccount,
    CreateBatch,
    ExportBatch,
    GetPreferences,
    PutPreferences,
    ListRequests,
    ApproveRequest,
    RejectRequest,
    ListAudit,
    Verify,
    Redeem,
    Poll,
    SignIn,
    ManualSignIn,
    Healthz,
    Metrics,
    OpenApi,
}

/// A route: method, path template (`{id}` stands for one path segment) and who may call it.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub id: RouteId,
    pub method: &'static str,
    pub path: &'static str,
    pub auth: Auth,
}

/// The prefix of every route of the contract: its version.
pub const VERSION_PREFIX: &str = "/v1";

/// The whole contract, v1.
pub const ROUTES: &[Route] = &[
    route(RouteId::ImportAccounts, "POST", "/v1/accounts", Auth::Admin),
    route(RouteId::ListAccounts, "GET", "/v1/accounts", Auth::Admin),
    route(RouteId::GetAccount, "GET", "/v1/accounts/{id}", Auth::Admin),
    route(RouteId::CreateBatch, "POST", "/v1/otp-batches", Auth::Admin),
    route(
        RouteId::ExportBatch,
        "GET",
        "/v1/otp-batches/{id}/export",
        Auth::Admin,
    ),
    route(
        RouteId::GetPreferences,
        "GET",
        "/v1/preferences",
        Auth::Admin,
    ),
    route(
        RouteId::PutPreferences,
        "PUT",
        "/v1/preferences",
        Auth::Admin,
    ),
    route(RouteId::ListRequests, "GET", "/v1/requests", Auth::Admin),
    route(
        RouteId::ApproveRequest,
        "POST",
        "/v1/requests/{id}/approve",
        Auth::Admin,
    ),
    route(
        RouteId::RejectRequest,
        "POST",
        "/v1/requests/{id}/reject",
        Auth::Admin,
    ),
    route(RouteId::Verify, "POST", "/v1/console/verify", Auth::None),
    route(RouteId::Redeem, "POST", "/v1/console/redeem", Auth::None),
    route(
        RouteId::Poll,
        "GET",
        "/v1/console/requests/{id}",
        Auth::PollToken,
    ),
    route(
        RouteId::SignIn,
        "POST",
        "/v1/console/requests/{id}/sign-in",
        Auth::PollToken,
    ),
    route(
        RouteId::ManualSignIn,
        "POST",
        "/v1/console/manual-sign-in",
        Auth::None,
    ),
    route(RouteId::ListAudit, "GET", "/v1/audit", Auth::Admin),
    route(RouteId::Healthz, "GET", "/healthz", Auth::None),
    route(RouteId::Metrics, "GET", "/metrics", Auth::None),
    route(RouteId::OpenApi, "GET", "/openapi.json", Auth::None),
];

const fn route(id: RouteId, method: &'static str, path: &'static str, auth: Auth) -> Route {
    Route {
        id,
        method,
        path,
        auth,
    }
}

impl RouteId {
    /// The table entry of this route.
    pub fn route(self) -> &'static Route {
        ROUTES
            .iter()
            .find(|r| r.id == self)
            .expect("every RouteId has an entry in ROUTES")
    }

    /// The path of a route without an `{id}` (`/v1/console/verify`): what a client requests.
    pub fn path(self) -> &'static str {
        self.route().path
    }

    /// The path of a route for the resource `id` (`/v1/requests/req_7/approve`).
    pub fn path_for(self, id: &str) -> String {
        self.route().path.replace("{id}", id)
    }
}

/// The route table as a tree of path segments, built once: a lookup walks the request's
/// segments once instead of trying every template.
#[derive(Debug, Default)]
struct Node {
    /// Children by literal segment (a handful each: a scan beats hashing).
    literal: Vec<(&'static str, Node)>,
    /// The child for an `{id}` segment.
    id: Option<Box<Node>>,
    /// The templates that end here (one per method), as indices into `ROUTES`.
    routes: Vec<usize>,
}

fn tree() -> &'static Node {
    static TREE: std::sync::OnceLock<Node> = std::sync::OnceLock::new();
    TREE.get_or_init(|| {
        let mut root = Node::default();
        for (i, route) in ROUTES.iter().enumerate() {
            let mut node = &mut root;
            for seg in route.path.split('/').skip(1) {
                node = if seg == "{id}" {
                    node.id.get_or_insert_with(Box::default)
                } else {
                    let at = match node.literal.iter().position(|(s, _)| *s == seg) {
                        Some(at) => at,
                        None => {
                            node.literal.push((seg, Node::default()));
                            node.literal.len() - 1
                        }
                    };
                    &mut node.literal[at].1
                };
            }
            node.routes.push(i);
        }
        root
    })
}

/// The templates `path` matches (indices into `ROUTES`, one per method) and its `{id}`
/// segment if they have one; none when no template matches. Equal to trying
/// [`Route::matches`] on every entry (a test holds it so).
pub fn lookup(path: &str) -> Option<(&'static [usize], Option<&str>)> {
    walk(tree(), path.strip_prefix('/')?, None)
}

fn walk<'p>(
    node: &'static Node,
    rest: &'p str,
    id: Option<&'p str>,
) -> Option<(&'static [usize], Option<&'p str>)> {
    let (seg, more) = match rest.split_once('/') {
        Some((seg, more)) => (seg, Some(more)),
        None => (rest, None),
    };
    let next = |child: &'static Node, id| match more {
        Some(more) => walk(child, more, id),
        None => (!child.routes.is_empty()).then_some((child.routes.as_slice(), id)),
    };
    if let Some((_, child)) = node.literal.iter().find(|(s, _)| *s == seg)
        && let Some(found) = next(child, id)
    {
        return Some(found);
    }
    match &node.id {
        Some(child) if !seg.is_empty() => next(child, Some(seg)),
        _ => None,
    }
}

impl Route {
    /// Matches a request path against this route's template; on a match, the `{id}` segment
    /// (if the template has one).
    pub fn matches<'p>(&self, path: &'p str) -> Option<Option<&'p str>> {
        // Most templates differ from the path in their first bytes: a prefix compare turns them
        // away before any splitting (the router tries the templates in turn).
        let Some((literal, _)) = self.path.split_once('{') else {
            return (path == self.path).then_some(None);
        };
        if !path.starts_with(literal) {
            return None;
        }
        let mut id = None;
        let mut want = self.path.split('/');
        let mut got = path.split('/');
        loop {
            match (want.next(), got.next()) {
                (None, None) => return Some(id),
                (Some("{id}"), Some(seg)) if !seg.is_empty() => id = Some(seg),
                (Some(w), Some(g)) if w == g => {}
                _ => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_build_paths_from_the_table() {
        assert_eq!(RouteId::Verify.path(), "/v1/console/verify");
        let path = RouteId::ApproveRequest.path_for("req_7");
        assert_eq!(path, "/v1/requests/req_7/approve");
        assert_eq!(
            RouteId::ApproveRequest.route().matches(&path),
            Some(Some("req_7"))
        );
    }

    #[test]
    fn templates_match_their_segments_only() {
        let poll = RouteId::Poll.route();
        assert_eq!(
            poll.matches("/v1/console/requests/req_7"),
            Some(Some("req_7"))
        );
        assert_eq!(poll.matches("/v1/console/requests/"), None);
        assert_eq!(poll.matches("/v1/console/requests/req_7/sign-in"), None);
        assert_eq!(RouteId::Healthz.route().matches("/healthz"), Some(None));
        assert_eq!(RouteId::Healthz.route().matches("/healthz/"), None);
        // Literal templates match whole paths only; a shared prefix is not a match.
        let redeem = RouteId::Redeem.route();
        assert_eq!(redeem.matches(RouteId::Redeem.path()), Some(None));
        assert_eq!(redeem.matches("/v1/console/redeemed"), None);
        let list = RouteId::ListAccounts.route();
        assert_eq!(list.matches(&RouteId::GetAccount.path_for("acc_1")), None);
        let approve = RouteId::ApproveRequest.route();
        assert_eq!(
            approve.matches(&RouteId::RejectRequest.path_for("req_1")),
            None
        );
    }

    /// The linear lookup the tree replaces: every template tried in turn.
    fn linear(path: &str) -> Option<(Vec<usize>, Option<&str>)> {
        let found: Vec<(usize, Option<&str>)> = ROUTES
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.matches(path).map(|id| (i, id)))
            .collect();
        let id = found.first()?.1;
        assert!(found.iter().all(|(_, other)| *other == id), "{path}");
        Some((found.into_iter().map(|(i, _)| i).collect(), id))
    }

    #[test]
    fn the_tree_finds_what_trying_every_template_finds() {
        // Every path of up to four segments over the table's own words, an id, an empty
        // segment and near misses.
        let mut words: Vec<&str> = ROUTES
            .iter()
            .flat_map(|r| r.path.split('/'))
            .filter(|s| !s.is_empty() && *s != "{id}")
            .collect();
        words.sort_unstable();
        words.dedup();
        words.extend(["req_7", "", "v2", "verify2"]);
        let mut paths = vec![String::new()];
        let mut checked = 0;
        for _ in 0..4 {
            let longer: Vec<String> = paths
                .iter()
                .flat_map(|p| words.iter().map(move |w| format!("{p}/{w}")))
                .collect();
            for path in &longer {
                let tree = lookup(path).map(|(routes, id)| (routes.to_vec(), id));
                assert_eq!(tree, linear(path), "{path}");
                checked += 1;
            }
            paths = longer;
        }
        assert!(checked > 100_000, "{checked} paths");
        for route in ROUTES {
            let path = route.path.replace("{id}", "req_123");
            assert!(
                lookup(&path)
                    .is_some_and(|(found, _)| found.iter().any(|i| ROUTES[*i].path == route.path))
            );
        }
        assert_eq!(lookup("healthz"), None, "a path starts with /");
    }

    #[test]
    fn every_route_id_has_one_entry() {
        for r in ROUTES {
            assert_eq!(
                ROUTES.iter().filter(|o| o.id == r.id).count(),
                1,
                "{:?}",
                r.id
            );
            assert_eq!(
                ROUTES
                    .iter()
                    .filter(|o| o.path == r.path && o.method == r.method)
                    .count(),
                1
            );
        }
    }
}
