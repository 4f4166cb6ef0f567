use redtrack::RedTrackEvent;

#[derive(RedTrackEvent)]
struct Event {
    #[redtrack(type = "real")]
    ratio: f64,
}

fn main() {}
