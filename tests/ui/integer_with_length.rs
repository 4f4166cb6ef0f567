use redtrack::RedTrackEvent;

#[derive(RedTrackEvent)]
struct Event {
    #[redtrack(type = "integer(4)")]
    count: i32,
}

fn main() {}
