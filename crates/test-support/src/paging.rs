//! The `?limit=&after=` paging every list endpoint offers, checked the same way for each.

use reqwest::StatusCode;

use crate::TestApp;

/// Checks `list` (e.g. `/payments`) pages records by order id: `ids` are the
/// order ids of every record it holds, more than `default_limit` of them; the
/// default page, `limit`, `after=`, the largest `limit` allowed (`max_limit`)
/// and the 400 answers to page sizes out of range or not numbers.
pub async fn check_paging(app: &TestApp, list: &str, mut ids: Vec<String>, default_limit: usize, max_limit: usize) {
    assert!(ids.len() > default_limit, "more records than one default page");
    ids.sort();
    let page = |path: String| async move {
        let answer = app.get(&path).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}: {answer:?}");
        let records = answer.body.as_array().cloned().unwrap_or_default();
        records
            .iter()
            .map(|record| record["order_id"].as_str().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(page(list.to_owned()).await, ids[..default_limit], "the default page");
    assert_eq!(page(format!("{list}?limit=2")).await, ids[..2], "limit=2");
    assert_eq!(
        page(format!("{list}?limit=2&after={}", ids[1])).await,
        ids[2..4],
        "the page after the second"
    );
    let last = &ids[ids.len() - 1];
    assert!(
        page(format!("{list}?after={last}")).await.is_empty(),
        "nothing after the last"
    );
    assert_eq!(page(format!("{list}?limit={max_limit}")).await, ids, "the largest page");
    for bad in [
        "0".to_owned(),
        (max_limit + 1).to_string(),
        "ten".to_owned(),
        "-1".to_owned(),
    ] {
        app.get(&format!("{list}?limit={bad}"))
            .await
            .assert_problem(StatusCode::BAD_REQUEST, "invalid-query");
    }
    app.get(&format!("{list}?after=not-an-id"))
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "invalid-query");
}
