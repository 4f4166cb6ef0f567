#![deny(unused_must_use)]

use redtrack::RedTrackEvent;

#[derive(RedTrackEvent)]
struct Event {
    id: i32,
}

// The record is accepted or refused when `try_write` is called; dropping what it returns
// unawaited loses the answer, which the compiler says.
fn shed(client: &redtrack::Client, event: &Event) {
    client.try_write(event);
}

fn main() {}
