//! Per-language expectations on real, idiomatic snippets: which definitions are found, their kinds,
//! qualified names, line ranges and doc comments; and how the chunks of a file are laid out.

use expect_test::{Expect, expect};
use ledge_chunker::{ChunkedFile, ChunkerConfig};

use crate::support::{chunker, fixture, small_config};

fn chunk(name: &str, config: ChunkerConfig) -> ChunkedFile {
    chunker(config).chunk(name, &fixture(name)).unwrap()
}

/// One line per symbol: `lines kind name`, then its doc comment indented.
fn check_symbols(name: &str, expected: Expect) {
    let file = chunk(name, ChunkerConfig::default());
    let mut out = String::new();
    for symbol in &file.symbols {
        let lines = format!("{}-{}", symbol.start_line, symbol.end_line);
        out.push_str(&format!("{lines:<7} {:<10} {}\n", format!("{:?}", symbol.kind), symbol.name));
        for line in symbol.doc.iter().flat_map(|doc| doc.lines()) {
            out.push_str(&format!("        | {line}\n").replace("| \n", "|\n"));
        }
    }
    expected.assert_eq(&out);
}

/// One line per chunk: `lines kind symbol [part] symbols`.
fn check_chunks(name: &str, config: ChunkerConfig, expected: Expect) {
    let file = chunk(name, config);
    let mut out = String::new();
    for chunk in &file.chunks {
        let lines = format!("{}-{}", chunk.start_line, chunk.end_line);
        let part = chunk.part.map(|p| format!(" ({}/{})", p.index, p.count)).unwrap_or_default();
        let symbol = chunk.symbol.as_deref().unwrap_or("-");
        out.push_str(&format!(
            "{lines:<7} {:<11} {symbol}{part} {:?}\n",
            format!("{:?}", chunk.kind),
            chunk.symbols
        ));
    }
    expected.assert_eq(&out);
}

#[test]
fn rust_definitions() {
    check_symbols(
        "rust.rs",
        expect![[r#"
        13-17   Struct     LruCache
                | A least-recently-used cache.
                |
                | Entries beyond `capacity` are evicted oldest first.
        20-24   Enum       CacheError
                | Why a lookup failed.
        26-60   Impl       LruCache
        28-30   Method     LruCache::new
                | Creates an empty cache holding at most `capacity` entries.
        33-39   Method     LruCache::get
                | Returns the value for `key`, marking it as recently used.
        42-48   Method     LruCache::insert
                | Inserts a value, evicting the oldest entry when full.
        50-59   Method     LruCache::evict_oldest
        62-69   Impl       <CacheError as fmt::Display>
        63-68   Method     CacheError::fmt
        72-79   Trait      Weigh
                | Something that can be weighed in bytes.
        74-74   Method     Weigh::weight
                | The size of the value in bytes.
        76-78   Method     Weigh::is_heavy
        81-81   TypeAlias  Shared
        84-91   Module     testing
                | Helpers for tests.
        86-90   Function   testing::one_entry
                | Builds a cache with one entry.
        93-99   Macro      cache_of
        102-112 Module     tests
        106-111 Function   tests::evicts_oldest
    "#]],
    );
}

#[test]
fn python_definitions() {
    check_symbols(
        "python.py",
        expect![[r#"
        11-34   Class      Item
                | An item in stock.
                |
                | Attributes:
                |     name: what it is called.
                |     quantity: how many are left.
        23-27   Method     Item.restock
                | Adds ``amount`` units to the stock.
        29-31   Method     Item.empty
        33-34   Class      Item.Meta
        37-48   Class      Inventory
                | All items, by name.
        40-41   Method     Inventory.__init__
        43-44   Method     Inventory.add
        47-48   Method     Inventory.find
                | Looks an item up by name.
        51-61   Function   load
                | Reads an inventory from ``path``.
                |
                | One item per line.
        64-66   Function   refresh
    "#]],
    );
}

#[test]
fn javascript_definitions() {
    check_symbols(
        "javascript.js",
        expect![[r#"
        10-24   Class      EventBus
                | A typed event bus.
                | Listeners are called in registration order.
        11-14   Method     EventBus.constructor
        17-19   Method     EventBus.publish
                | Publishes `payload` on `topic`.
        21-23   Method     EventBus.create
        29-31   Function   once
                | Waits for the next event on `topic`.
        34-34   Function   format
                | Formats an event for logs.
        36-38   Function   topics
    "#]],
    );
}

#[test]
fn typescript_definitions() {
    check_symbols(
        "typescript.ts",
        expect![[r#"
        5-9     Interface  ClientOptions
                | Options accepted by {@link Client}.
        12-12   TypeAlias  Method
                | The HTTP methods the client speaks.
        14-17   Enum       Status
        22-34   Class      Client
                | A minimal HTTP client.
        25-27   Method     Client.constructor
        30-33   Method     Client.request
                | Sends a request and decodes the JSON answer.
        36-38   Class      Middleware
        37-37   Method     Middleware.handle
        40-45   Module     Retry
        42-44   Function   Retry.backoff
                | Delay before attempt `n`, in milliseconds.
        47-47   Function   isOk
    "#]],
    );
}

#[test]
fn tsx_definitions() {
    check_symbols(
        "component.tsx",
        expect![[r#"
        3-3     TypeAlias  Props
        6-13    Function   Counter
                | A button that counts its clicks.
        16-24   Function   CounterList
                | Shows a list of counters.
    "#]],
    );
}

#[test]
fn go_definitions() {
    check_symbols(
        "go.go",
        expect![[r#"
        14-18   Struct     Queue
                | Queue is a bounded FIFO of jobs.
                | It is safe for concurrent use.
        21-23   Interface  Job
                | Job is one unit of work.
        27-27   TypeAlias  ID
                | ID identifies a job.
        28-28   TypeAlias  priority
        31-31   TypeAlias  Handler
        34-36   Function   New
                | New returns an empty queue holding at most max jobs.
        39-47   Method     Queue.Push
                | Push appends a job.
        49-49   Method     Queue.Len
    "#]],
    );
}

#[test]
fn java_definitions() {
    check_symbols(
        "java.java",
        expect![[r#"
        11-34   Class      Invoice
                | An invoice with its line items.
                |
                | @author fixtures
        15-15   Method     Invoice.Invoice
                | Creates an empty invoice.
        21-23   Method     Invoice.add
                | Adds a line.
                | @param line the line to add
        26-28   Method     Invoice.total
                | Sum of all lines, in cents.
        31-31   Class      Invoice.Line
                | One billed item.
        33-33   Enum       Invoice.State
        37-39   Interface  Billable
                | Something that can be billed.
        38-38   Method     Billable.bill
    "#]],
    );
}

#[test]
fn c_definitions() {
    check_symbols(
        "c.c",
        expect![[r#"
        8-13    Struct     ring_t
                | A fixed-size ring of bytes.
        15-18   Struct     stats
        20-20   Enum       mode
        22-22   TypeAlias  ring_visit_fn
        24-24   Function   ring_full
        30-40   Function   ring_new
                | Allocates a ring holding `cap` bytes.
                | Returns NULL when out of memory.
        43-51   Function   ring_push
                | Appends one byte, dropping the oldest when full.
        53-53   Function   ring_full
        56-59   Function   ring_dump
    "#]],
    );
}

#[test]
fn cpp_definitions() {
    check_symbols(
        "cpp.cpp",
        expect![[r#"
        5-47    Module     geo
        8-16    Struct     geo::Point
                | A point in the plane.
        13-15   Method     geo::Point::distance
                | Distance to another point.
        19-27   Class      geo::Polygon
                | A closed polygon.
        21-21   Method     geo::Polygon::Polygon
        23-23   Method     geo::Polygon::perimeter
        30-36   Method     geo::Polygon::perimeter
                | Sums the edge lengths.
        38-41   Function   geo::clamp
        43-43   TypeAlias  geo::Path
        45-45   Enum       geo::Winding
    "#]],
    );
}

#[test]
fn ruby_definitions() {
    check_symbols(
        "ruby.rb",
        expect![[r#"
        6-33    Module     Notifications
                | Sends notifications to users.
        10-28   Class      Notifications::Message
                | A message waiting to be delivered.
        14-17   Method     Notifications::Message#initialize
                | Builds a message for +to+.
        19-21   Method     Notifications::Message#to_json
        24-27   Method     Notifications::Message.parse
                | Parses a message from JSON.
        30-32   Method     Notifications.deliver
        35-37   Function   main
    "#]],
    );
}

#[test]
fn rust_chunks_with_default_limits() {
    check_chunks(
        "rust.rs",
        ChunkerConfig::default(),
        expect![[r#"
        1-25    Definitions - ["LruCache", "CacheError"]
        26-61   Impl        LruCache ["LruCache", "LruCache::new", "LruCache::get", "LruCache::insert", "LruCache::evict_oldest"]
        62-100  Definitions - ["<CacheError as fmt::Display>", "CacheError::fmt", "Weigh", "Weigh::weight", "Weigh::is_heavy", "Shared", "testing", "testing::one_entry", "cache_of"]
        101-112 Module      tests ["tests", "tests::evicts_oldest"]
    "#]],
    );
}

#[test]
fn rust_chunks_with_small_limits_split_containers_into_members() {
    check_chunks(
        "rust.rs",
        small_config(),
        expect![[r#"
        1-8     Code        - []
        9-18    Struct      LruCache ["LruCache"]
        19-25   Enum        CacheError ["CacheError"]
        26-26   Impl        LruCache ["LruCache"]
        27-31   Method      LruCache::new ["LruCache::new"]
        32-40   Method      LruCache::get ["LruCache::get"]
        41-49   Method      LruCache::insert ["LruCache::insert"]
        50-59   Method      LruCache::evict_oldest ["LruCache::evict_oldest"]
        60-61   Impl        LruCache ["LruCache"]
        62-70   Impl        <CacheError as fmt::Display> ["<CacheError as fmt::Display>", "CacheError::fmt"]
        71-80   Trait       Weigh ["Weigh", "Weigh::weight", "Weigh::is_heavy"]
        81-82   TypeAlias   Shared ["Shared"]
        83-92   Module      testing ["testing", "testing::one_entry"]
        93-100  Macro       cache_of ["cache_of"]
        101-112 Module      tests ["tests", "tests::evicts_oldest"]
    "#]],
    );
}

#[test]
fn python_chunks_with_small_limits() {
    check_chunks(
        "python.py",
        small_config(),
        expect![[r#"
        1-9     Code        - []
        10-17   Class       Item (1/2) ["Item"]
        16-22   Class       Item (2/2) ["Item"]
        23-28   Method      Item.restock ["Item.restock"]
        29-36   Definitions - ["Item.empty", "Item.Meta"]
        37-45   Definitions - ["Inventory", "Inventory.__init__", "Inventory.add"]
        46-50   Method      Inventory.find ["Inventory.find"]
        51-58   Function    load (1/2) ["load"]
        57-63   Function    load (2/2) ["load"]
        64-68   Function    refresh ["refresh"]
        69-70   Code        - []
    "#]],
    );
}

#[test]
fn markdown_chunks_are_line_windows() {
    let config = ChunkerConfig { window_lines: 6, window_overlap_lines: 2, ..ChunkerConfig::default() };
    check_chunks(
        "README.md",
        config,
        expect![[r#"
        1-6     Text        - []
        5-10    Text        - []
        9-14    Text        - []
        13-16   Text        - []
    "#]],
    );
}
