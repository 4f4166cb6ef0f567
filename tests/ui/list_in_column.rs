use redtrack::RedTrackEvent;

#[derive(RedTrackEvent)]
struct Event {
    tags: Vec<String>,
    counts: std::collections::HashMap<String, i64>,
    pair: (i32, String),
}

fn main() {}
