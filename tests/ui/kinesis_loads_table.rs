use redtrack::RedTrackEvent;

#[derive(RedTrackEvent)]
#[redtrack(table = "kinesis_loads")]
struct Event {
    id: i64,
}

fn main() {}
