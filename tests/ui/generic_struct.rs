use redtrack::RedTrackEvent;

#[derive(RedTrackEvent)]
struct Event<T> {
    value: T,
}

fn main() {}
