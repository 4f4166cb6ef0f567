use redtrack::RedTrackEvent;

#[derive(RedTrackEvent)]
struct Event {
    #[redtrack(type = "smallint")]
    count: i64,
}

fn main() {}
