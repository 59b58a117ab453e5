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
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut s = String::new();
        for (w, c) in widths.iter().zip(cells) {
            s.push_str(&format!("| {c:<w$} "));
        }
        s.push('|');
        s
    };
    let mut out = String::with_capacity(rows.len() * (rule.len() + 1) + 3 * rule.len());
    out.push_str(&rule);
    out.push('\n');
    out.push_str(&line(&mut headers.iter().copied()));
    out.push('\n');
    out.push_str(&rule);
    out.push('\n');
    for r in &rows {
        out.push_str(&line(&mut r.iter().map(String::as_str)));
        out.push('\n');
    }
    out.push_str(&rule);
    println!("{out}");
}
