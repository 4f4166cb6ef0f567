use redtrack::RedTrackEvent;

#[derive(RedTrackEvent)]
struct Event(i64, String);

fn main() {}
