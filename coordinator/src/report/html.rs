//! The HTML page: one file with inline CSS and inline SVG, readable offline
//! and without JavaScript.
//!
//! The only script is a self-check for automated tests: after load it
//! measures every figure's rendered size and writes the result into the
//! `data-figure-check` attribute of `<body>` ("ok N" for N figures, or
//! "empty: NAMES"). The page reads the same without it.

use std::fmt::Write as _;

use super::section::{Built, Section};

/// Escapes text for HTML and SVG element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

const STYLE: &str = "\
body{font-family:'DejaVu Sans',Arial,Helvetica,sans-serif;max-width:70rem;margin:0 auto;padding:1rem 2rem;color:#111;line-height:1.45}\
h1{font-size:1.6rem}h2{font-size:1.3rem;border-bottom:1px solid #ccc;padding-bottom:.2rem;margin-top:2.2rem}\
nav ol{columns:2}\
table{border-collapse:collapse;margin:.8rem 0;font-size:.9rem}\
caption{text-align:left;font-weight:bold;padding:.3rem 0}\
th,td{border:1px solid #bbb;padding:.25rem .5rem;text-align:left;vertical-align:top}\
th{background:#f0f0f0}\
tbody tr:nth-child(even){background:#fafafa}\
.files{font-weight:normal;font-size:.85rem}\
figure{margin:1rem 0;page-break-inside:avoid}\
figure svg{max-width:100%;height:auto;border:1px solid #eee}\
figcaption{font-size:.9rem}\
.omitted{font-style:italic;color:#444}\
@media print{nav{display:none}body{max-width:none}}";

const SELF_CHECK: &str = "\
window.addEventListener('load',function(){\
var empty=[];var figures=document.querySelectorAll('figure svg, figure img');\
figures.forEach(function(f){var r=f.getBoundingClientRect();\
if(!(r.width>0&&r.height>0)){empty.push(f.closest('figure').id);}});\
document.body.setAttribute('data-figure-check',empty.length?'empty: '+empty.join(' '):'ok '+figures.length);});";

/// Renders the whole page.
pub fn render_page(built: &Built, font_faces: usize) -> String {
    let mut html = String::new();
    html.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    html.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    html.push_str("<title>radstudy report</title><style>");
    html.push_str(STYLE);
    html.push_str("</style></head><body data-figure-check=\"pending\">");
    html.push_str("<h1>radstudy study report</h1><nav><ol>");
    for section in &built.sections {
        let _ = write!(
            html,
            "<li><a href=\"#{}\">{}</a></li>",
            escape(&section.id),
            escape(&section.title)
        );
    }
    html.push_str("</ol></nav>");
    for section in &built.sections {
        render_section(&mut html, section);
    }
    if font_faces == 0 {
        html.push_str(
            "<p class=\"omitted\">No system font was found, so the PNG copies in figures/ have \
             no text; the figures on this page and the SVG copies are complete.</p>",
        );
    }
    let _ = writeln!(html, "<script>{SELF_CHECK}</script></body></html>");
    html
}

fn render_section(html: &mut String, section: &Section) {
    let _ = write!(
        html,
        "<section id=\"{}\"><h2>{}</h2>",
        escape(&section.id),
        escape(&section.title)
    );
    if let Some(reason) = &section.omitted {
        let _ = write!(
            html,
            "<p class=\"omitted\">{}</p></section>",
            escape(reason)
        );
        return;
    }
    for paragraph in &section.paragraphs {
        let _ = write!(html, "<p>{}</p>", escape(paragraph));
    }
    for table in &section.tables {
        html.push_str(&table.to_html());
    }
    for figure in &section.figures {
        let _ = write!(
            html,
            "<figure id=\"figure-{}\">{}<figcaption>{} (<a href=\"figures/{}.svg\">SVG</a>, <a href=\"figures/{}.png\">PNG</a>)</figcaption></figure>",
            escape(&figure.name),
            figure.svg,
            escape(&figure.caption),
            escape(&figure.name),
            escape(&figure.name)
        );
    }
    html.push_str("</section>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_replaces_markup_characters() {
        assert_eq!(escape("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
    }
}
