use redtrack::RedTrackEvent;

#[derive(RedTrackEvent)]
struct Event {
    #[redtrack(type = "varchar(256)")]
    tags: Vec<String>,
}

fn main() {}
