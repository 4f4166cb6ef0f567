use redtrack::RedTrackEvent;

// Every problem is reported in one pass, and the stub impl keeps uses of the struct quiet.
#[derive(RedTrackEvent)]
#[redtrack(table = "events", sortkey = "missing")]
struct Event {
    #[redtrack(type = "varchar(70000)")]
    a: String,
    #[redtrack(type = "bigint", encode = "text32k")]
    b: i64,
    #[redtrack(rename = "A")]
    c: String,
}

fn main() {
    let _ = Event::create_table_sql();
}
