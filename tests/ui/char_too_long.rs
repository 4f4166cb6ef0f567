use redtrack::RedTrackEvent;

#[derive(RedTrackEvent)]
struct Event {
    #[redtrack(type = "char(4097)")]
    code: String,
}

fn main() {}
