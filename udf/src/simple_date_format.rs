//! Java `SimpleDateFormat` patterns translated to chrono format strings.
//!
//! Kafka Connect users bring patterns such as `yyyy-MM-dd'T'HH:mm:ss.SSSZ` from
//! `TimestampConverter` and `TimestampRouter`; [`to_chrono`] turns one into the
//! equivalent chrono `strftime` string once, so formatting a batch never re-reads
//! the pattern. Letters chrono cannot express are refused with the letter named.

/// Translates a `SimpleDateFormat` pattern into a chrono format string.
pub fn to_chrono(pattern: &str) -> Result<String, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() * 2);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            // Quoted literal; '' is a single quote.
            if chars.get(i + 1) == Some(&'\'') {
                out.push('\'');
                i += 2;
                continue;
            }
            let mut j = i + 1;
            loop {
                match chars.get(j) {
                    None => return Err(format!("unterminated quote starting at position {i} in '{pattern}'")),
                    Some('\'') if chars.get(j + 1) == Some(&'\'') => {
                        out.push('\'');
                        j += 2;
                    }
                    Some('\'') => break,
                    Some('%') => {
                        out.push_str("%%");
                        j += 1;
                    }
                    Some(ch) => {
                        out.push(*ch);
                        j += 1;
                    }
                }
            }
            i = j + 1;
            continue;
        }
        if !c.is_ascii_alphabetic() {
            if c == '%' {
                out.push_str("%%");
            } else {
                out.push(c);
            }
            i += 1;
            continue;
        }
        let mut n = 1;
        while chars.get(i + n) == Some(&c) {
            n += 1;
        }
        let spec = match (c, n) {
            ('y' | 'u', 2) if c == 'y' => "%y",
            ('y', _) => "%Y",
            ('M', 1) => "%-m",
            ('M', 2) => "%m",
            ('M', 3) => "%b",
            ('M', _) => "%B",
            ('d', 1) => "%-d",
            ('d', _) => "%d",
            ('D', _) => "%j",
            ('H', 1) => "%-H",
            ('H', _) => "%H",
            ('h', 1) => "%-I",
            ('h', _) => "%I",
            ('m', 1) => "%-M",
            ('m', _) => "%M",
            ('s', 1) => "%-S",
            ('s', _) => "%S",
            ('S', 1..=3) => "%3f",
            ('S', 4..=6) => "%6f",
            ('S', _) => "%9f",
            ('E', 1..=3) => "%a",
            ('E', _) => "%A",
            ('a', _) => "%p",
            ('u', _) => "%u",
            ('w', _) => "%V",
            ('z', _) => "%Z",
            ('Z', _) => "%z",
            ('X', 1) => "%#z",
            ('X', _) => "%:z",
            (other, _) => {
                return Err(format!(
                    "pattern letter '{other}' in '{pattern}' is not supported (supported: y M d D H h m s S E a u w z Z X and quoted literals)"
                ));
            }
        };
        out.push_str(spec);
        i += n;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::to_chrono;

    #[test]
    fn common_kafka_connect_patterns() {
        assert_eq!(to_chrono("yyyy-MM-dd").unwrap(), "%Y-%m-%d");
        assert_eq!(
            to_chrono("yyyy-MM-dd'T'HH:mm:ss.SSSZ").unwrap(),
            "%Y-%m-%dT%H:%M:%S%.3f%z"
                .replace("%.3f", "%3f")
                .replace("%S%3f", "%S.%3f")
        );
        assert_eq!(to_chrono("yyyyMMdd").unwrap(), "%Y%m%d");
        assert_eq!(to_chrono("dd/MM/yy HH:mm").unwrap(), "%d/%m/%y %H:%M");
        assert_eq!(to_chrono("'it''s' yyyy").unwrap(), "it's %Y");
        assert!(to_chrono("yyyy-qq").unwrap_err().contains("'q'"));
        assert!(to_chrono("'open").is_err());
    }
}
