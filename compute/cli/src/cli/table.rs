//! Plain text tables like the `nova` client prints (`+----+` borders).

pub fn print(headers: &[&str], rows: impl IntoIterator<Item = Vec<String>>) {
    let rows: Vec<Vec<String>> = rows.into_iter().collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let rule: String = widths
        .iter()
        .map(|w| format!("+{}", "-".repeat(w + 2)))
        .collect::<String>()
        + "+";
    let line = |out: &mut String, cells: &mut dyn Iterator<Item = &str>| {
        for (w, c) in widths.iter().zip(cells) {
            out.push_str("| ");
            out.push_str(c);
            out.extend(std::iter::repeat_n(' ', w + 1 - c.chars().count()));
        }
        out.push_str("|\n");
    };
    let mut out = String::with_capacity(rows.len() * (rule.len() + 1) + 3 * rule.len());
    out.push_str(&rule);
    out.push('\n');
    line(&mut out, &mut headers.iter().copied());
    out.push_str(&rule);
    out.push('\n');
    for r in &rows {
        line(&mut out, &mut r.iter().map(String::as_str));
    }
    out.push_str(&rule);
    out.push('\n');
    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), out.as_bytes());
}
