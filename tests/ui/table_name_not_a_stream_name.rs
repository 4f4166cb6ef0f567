use redtrack::RedTrackEvent;

// Valid Redshift identifiers, but not valid in a Kinesis stream name.
#[derive(RedTrackEvent)]
#[redtrack(table = "ev$nts")]
struct Dollar {
    id: i64,
}

#[derive(RedTrackEvent)]
#[redtrack(table = "Café_Events")]
struct Accent {
    id: i64,
}

#[derive(RedTrackEvent)]
struct Événement {
    id: i64,
}

// Columns may use them: only the table name is in the stream name.
#[derive(RedTrackEvent)]
#[redtrack(table = "prices")]
struct Fine {
    #[redtrack(rename = "price$usd")]
    price: i64,
    #[redtrack(rename = "naïve")]
    naive: bool,
}

fn main() {}
