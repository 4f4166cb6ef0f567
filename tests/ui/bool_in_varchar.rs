use redtrack::RedTrackEvent;

#[derive(RedTrackEvent)]
struct Event {
    #[redtrack(type = "varchar(8)")]
    active: bool,
}

fn main() {}
