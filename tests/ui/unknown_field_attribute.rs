use redtrack::RedTrackEvent;

#[derive(RedTrackEvent)]
#[redtrack(table = "events")]
struct Event {
    #[redtrack(nullable)]
    id: i64,
    #[redtrack(sortkey = "id")]
    other: i64,
}

fn main() {}
