use redtrack::RedTrackEvent;

#[derive(RedTrackEvent)]
struct Event {
    #[redtrack(type = "varchar(65536)")]
    body: String,
}

fn main() {}
