//! Tryout 8 finding 4: an unknown option of a short-syntax volume (`vol:/data:rx`, meant
//! `ro`) is refused at its file, line and column instead of mounting the volume writable.

mod support;

use support::load_one;

#[test]
fn an_unknown_short_volume_option_is_refused_at_its_line_and_column() {
    let text = "services:\n  web:\n    image: a:1\n    volumes:\n      - vol:/data:rx\nvolumes:\n  vol: {}\n";
    let error = load_one(text).unwrap_err();
    assert_eq!((error.line, error.column), (5, 9), "{error}");
    assert!(
        error
            .message
            .contains("unknown option `rx`; the options are ro, rw, nocopy, z, Z"),
        "{error}"
    );
    let stack = load_one(&text.replace(":rx", ":ro,z")).unwrap();
    let volumes = &stack.services["web"].volumes.as_ref().unwrap().0;
    assert_eq!(volumes[0].value.read_only, Some(true));
}
