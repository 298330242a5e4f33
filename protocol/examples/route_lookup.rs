//! Instructions of a route lookup, for callgrind: `valgrind --tool=callgrind
//! --toggle-collect='route_lookup::*lookups' target/release/examples/route_lookup` then
//! `callgrind_annotate`. Looks up each route's path (with an id where it has one) `ROUNDS`
//! times, twice: trying every template in turn (`linear_lookups`, the way the router did) and
//! walking the segment tree (`tree_lookups`, the way it does).

use otpfleet_protocol::{ROUTES, lookup};
use std::hint::black_box;

const ROUNDS: usize = 10_000;

#[inline(never)]
fn linear_lookups(paths: &[String]) -> usize {
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

#[inline(never)]
fn tree_lookups(paths: &[String]) -> usize {
    let mut found = 0;
    for _ in 0..ROUNDS {
        for path in paths {
            if lookup(black_box(path)).is_some() {
                found += 1;
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
    let linear = linear_lookups(&paths);
    let tree = tree_lookups(&paths);
    println!(
        "{linear} linear and {tree} tree lookups of {} paths",
        paths.len()
    );
}
