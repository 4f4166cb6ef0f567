use redtrack::RedTrackEvent;

#[derive(RedTrackEvent)]
struct Event {
    #[redtrack(type = "geometry")]
    shape: String,
}

fn main() {}
