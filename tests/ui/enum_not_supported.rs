use redtrack::RedTrackEvent;

#[derive(RedTrackEvent)]
enum Event {
    Click { x: i32 },
}

fn main() {}
