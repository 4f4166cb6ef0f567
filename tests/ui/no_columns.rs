use redtrack::RedTrackEvent;

#[derive(RedTrackEvent)]
struct Event {
    #[redtrack(skip)]
    cache: String,
}

fn main() {}
