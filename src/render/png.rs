//! PNG from our own SVG, with resvg. Text uses the DejaVu Sans font built
//! into the binary (`assets/fonts/`), never a system font; images resolve
//! only from `data:` URIs (our re-encoded logos), never from files or the
//! network.

use std::sync::OnceLock;

use resvg::{tiny_skia, usvg};

const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

fn options() -> &'static usvg::Options<'static> {
    static OPTIONS: OnceLock<usvg::Options<'static>> = OnceLock::new();
    OPTIONS.get_or_init(|| {
        let mut opt = usvg::Options {
            font_family: "DejaVu Sans".to_owned(),
            ..usvg::Options::default()
        };
        opt.fontdb_mut().load_font_data(FONT.to_vec());
        opt.image_href_resolver = usvg::ImageHrefResolver {
            resolve_data: usvg::ImageHrefResolver::default_data_resolver(),
            resolve_string: Box::new(|_, _| None),
        };
        opt
    })
}

/// Renders `svg` at its own size. Fails only on SVG we did not make right.
pub fn rasterize(svg: &str) -> Result<Vec<u8>, String> {
    let tree = usvg::Tree::from_str(svg, options()).map_err(|e| e.to_string())?;
    let size = tree.size().to_int_size();
    let mut pixmap =
        tiny_skia::Pixmap::new(size.width().max(1), size.height().max(1)).ok_or("empty image")?;
    resvg::render(&tree, tiny_skia::Transform::default(), &mut pixmap.as_mut());
    pixmap.encode_png().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_text_with_the_built_in_font() {
        let svg = r##"<svg xmlns="http://www.w3.org/2000/svg" width="200" height="50"><rect width="200" height="50" fill="#fff"/><text x="10" y="35" font-size="30" fill="#000">Hello</text></svg>"##;
        let png = rasterize(svg).unwrap();
        let img = image::load_from_memory(&png).unwrap().to_rgba8();
        assert_eq!(img.dimensions(), (200, 50));
        let dark = img.pixels().filter(|p| p.0[0] < 100).count();
        assert!(dark > 50, "the text was drawn: {dark} dark pixels");
    }
}
