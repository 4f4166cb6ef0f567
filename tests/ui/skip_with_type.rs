use redtrack::RedTrackEvent;

#[derive(RedTrackEvent)]
struct Event {
    id: i64,
    #[redtrack(skip, type = "varchar(8)")]
    cache: String,
}

fn main() {}
