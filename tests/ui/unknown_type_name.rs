use redtrack::RedTrackEvent;

#[derive(RedTrackEvent)]
struct Event {
    #[redtrack(type = "varchr(32)")]
    name: String,
}

fn main() {}
