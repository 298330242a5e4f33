//! Instructions of a route lookup, for callgrind: `valgrind --tool=callgrind --toggle-collect=
//! route_lookup::lookups target/release/examples/route_lookup` then `callgrind_annotate`.
//! Looks up each route's path (with an id where it has one) against the whole table, the way
//! the router does, `ROUNDS` times.

use otpfleet_protocol::ROUTES;
use std::hint::black_box;

const ROUNDS: usize = 10_000;

#[inline(never)]
fn lookups(paths: &[String]) -> usize {
    let mut found = 0;
    for _ in 0..ROUNDS {
        for path in paths {
            for route in ROUTES {
                if black_box(route).matches(black_box(path)).is_some() {
                    found += 1;
                    break;
                }
            }
        }
    }
    found
}

fn main() {
    let paths: Vec<String> = ROUTES
        .iter()
        .map(|r| r.path.replace("{id}", "req_123456"))
        .collect();
    let found = lookups(&paths);
    println!("{found} lookups of {} paths", paths.len());
}
