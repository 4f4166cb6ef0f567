use redtrack::RedTrackEvent;

struct Email(String);

#[derive(RedTrackEvent)]
struct Event {
    email: Email,
    count: u64,
}

fn main() {}
