use redtrack::RedTrackEvent;

#[derive(RedTrackEvent)]
struct Event {
    #[redtrack(type = "varchar(0)")]
    name: String,
}

fn main() {}
