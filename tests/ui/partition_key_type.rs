use redtrack::RedTrackEvent;

#[derive(RedTrackEvent)]
struct Event {
    #[redtrack(partition_key)]
    ratio: f64,
}

fn main() {}
