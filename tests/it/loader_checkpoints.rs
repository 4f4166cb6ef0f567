//! `kinesis_loads` queries compare sequence numbers numerically (up to 129 digits, stored as
//! text), in SQL, with bound parameters: the latest checkpoint per shard and the overlap check.

use crate::seed;

use redtrack::__test::{read_checkpoints, OVERLAP_SQL};
use seed::TestEvent;

crate::each_backend! {
    async fn sequence_numbers_compare_numerically(env: TestEnv) {
        env.loader::<TestEvent>().await;
        // The loader's own statements, through the warehouse (the stand-in on Redshift).
        let pg = env.warehouse().await;
        let long = format!("1{}", "0".repeat(128)); // 129 digits
        let rows: &[(&str, &str, &str)] = &[
            ("a", "9", "99"),
            ("a", "100", "250"), // longer, so larger, though "250" < "99" as text
            ("b", "0098", "0099"),
            ("b", "5", &long),
            ("c", "1", "9"),
        ];
        for (shard, start, end) in rows {
            pg.execute(
                "INSERT INTO kinesis_loads VALUES ('s', $1, 't', $2, $3, '2024-01-01 00:00:00')",
                &[shard, start, end],
            )
            .await
            .unwrap();
        }
        let cps = read_checkpoints(&pg, "s").await.unwrap();
        assert_eq!(cps["a"].sequence_number, "250");
        assert_eq!(cps["b"].sequence_number, long);
        assert_eq!(cps["c"].sequence_number, "9");
        assert!(read_checkpoints(&pg, "other").await.unwrap().is_empty());

        let overlaps = |shard: &'static str, first: &'static str, last: &'static str| {
            let pg = &pg;
            async move {
                !pg.query(OVERLAP_SQL, &[&"s", &shard, &first, &last])
                    .await
                    .unwrap()
                    .is_empty()
            }
        };
        assert!(!overlaps("a", "251", "1000").await);
        assert!(overlaps("a", "250", "1000").await);
        assert!(overlaps("a", "10", "20").await);
        assert!(!overlaps("a", "1", "8").await);
        assert!(!overlaps("c", "10", "99").await, "10 > 9 numerically");
        assert!(overlaps("b", "6", "7").await, "inside 5..=10^128");
        assert!(!overlaps("b", "1", "4").await);
    }
}
