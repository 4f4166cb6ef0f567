use redtrack::RedTrackEvent;

#[derive(RedTrackEvent)]
struct Event;

fn main() {}
