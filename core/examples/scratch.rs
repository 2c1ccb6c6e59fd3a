use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
fn main() {
    for s in std::env::args().skip(1) {
        match Parser::parse_sql(&PostgreSqlDialect {}, &s) {
            Ok(v) => for st in v { println!("{s}\n => {st:#?}\n"); },
            Err(e) => println!("{s}\n => ERR {e}\n"),
        }
    }
}
