use redtrack::RedTrackEvent;

#[derive(RedTrackEvent)]
#[redtrack(sortkey = "payload")]
struct Event {
    payload: serde_json::Value,
}

fn main() {}
