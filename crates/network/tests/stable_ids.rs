//! A KPI row's id depends on the data alone: the same files ingested in two orders, and
//! once with a crash between a file's transaction and the recomputation of its KPIs, give
//! byte-identical `/api/KPIs/1/` and `/api/KPIs/2/` bodies.

mod common;

use std::sync::Arc;

use common::{get_ok, seed, server, upload};
use sluice_network::NetworkDomain;
use sluice_server::testing::TestServer;

const SYSTEM: &str = "sgioldasis-python-analysis-api";
const FILES: [&str; 4] = [
    "ipflow_data.ts-1488355500000.1.txt",
    "ipflow_data.ts-1488355500000.2.txt",
    "ipflow_data.ts-1488355800000.1.txt",
    "ipflow_data.ts-1488355800000.2.txt",
];

async fn bodies(s: &TestServer) -> [String; 2] {
    [
        get_ok(s, "/api/KPIs/1/").await,
        get_ok(s, "/api/KPIs/2/").await,
    ]
}

async fn ingested_in_order(order: [usize; 4]) -> [String; 2] {
    let s = server(&[]).await;
    for i in order {
        upload(&s, FILES[i], seed(SYSTEM, FILES[i])).await;
    }
    bodies(&s).await
}

/// What a process killed right after a file's transaction leaves: the file's state and
/// ledger entry committed (the same writes as an ingestion job's), its intervals dirty, its
/// KPIs not recomputed.
fn commit_then_crash(s: &TestServer, name: &str) {
    let bytes = seed(SYSTEM, name);
    common::commit_file(s, name, &bytes);
}

#[tokio::test]
async fn ids_do_not_depend_on_ingestion_order_or_crash_recovery() {
    let forward = ingested_in_order([0, 1, 2, 3]).await;
    let backward = ingested_in_order([3, 1, 2, 0]).await;
    assert_eq!(forward, backward);

    let s = server(&[]).await;
    for f in &FILES[..3] {
        upload(&s, f, seed(SYSTEM, f)).await;
    }
    commit_then_crash(&s, FILES[3]);
    // The crash left the last file's KPIs out: this is the state recovery starts from.
    assert_ne!(bodies(&s).await, forward);
    let s = s.restart(vec![Arc::new(NetworkDomain)]).await;
    // Delivering the file again is a no-op for the ledger, and its job finishes only after
    // the intervals left dirty were recomputed.
    let again = upload(&s, FILES[3], seed(SYSTEM, FILES[3])).await;
    assert_eq!(
        again["summary"]["files"][0]["status"], "duplicate",
        "{again}"
    );
    assert_eq!(bodies(&s).await, forward);
}
