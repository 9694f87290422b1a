//! Language detection from paths, shebang lines and header contents, and the stable language names.

use ledge_chunker::Language::{self, *};

#[test]
fn paths_map_to_languages() {
    let cases: &[(&str, Option<Language>)] = &[
        ("src/main.rs", Some(Rust)),
        ("tools/gen.py", Some(Python)),
        ("stubs/os.pyi", Some(Python)),
        ("web/app.js", Some(JavaScript)),
        ("web/app.mjs", Some(JavaScript)),
        ("web/app.cjs", Some(JavaScript)),
        ("web/App.jsx", Some(JavaScript)),
        ("web/api.ts", Some(TypeScript)),
        ("types/index.d.ts", Some(TypeScript)),
        ("web/App.tsx", Some(Tsx)),
        ("cmd/main.go", Some(Go)),
        ("src/Main.java", Some(Java)),
        ("lib/ring.c", Some(C)),
        ("lib/ring.h", Some(C)),
        ("lib/geo.cpp", Some(Cpp)),
        ("lib/geo.cc", Some(Cpp)),
        ("lib/geo.hpp", Some(Cpp)),
        ("lib/geo.hh", Some(Cpp)),
        ("app/models/user.rb", Some(Ruby)),
        ("Rakefile", Some(Ruby)),
        ("Gemfile", Some(Ruby)),
        ("README.md", Some(Markdown)),
        ("package.json", Some(Json)),
        (".github/workflows/ci.yml", Some(Yaml)),
        ("Cargo.toml", Some(Toml)),
        ("Cargo.lock", Some(Toml)),
        ("scripts/setup.sh", Some(Shell)),
        ("Makefile", Some(Makefile)),
        ("build/rules.mk", Some(Makefile)),
        ("Dockerfile", Some(Dockerfile)),
        ("deploy/Dockerfile.prod", Some(Dockerfile)),
        ("api.dockerfile", Some(Dockerfile)),
        ("CMakeLists.txt", Some(CMake)),
        ("schema.proto", Some(Protobuf)),
        ("query.SQL", Some(Sql)),
        ("SRC\\WIN\\MAIN.RS", Some(Rust)),
        ("LICENSE", None),
        ("notes.txt", None),
        (".gitignore", None),
        ("archive.tar.gz", None),
        ("", None),
    ];
    for (path, expected) in cases {
        assert_eq!(Language::from_path(path), *expected, "{path}");
    }
}

#[test]
fn shebang_lines_name_the_interpreter() {
    let cases: &[(&str, Option<Language>)] = &[
        ("#!/usr/bin/env python3", Some(Python)),
        ("#!/usr/bin/python3.11 -u", Some(Python)),
        ("#!/bin/bash -e", Some(Shell)),
        ("#!/bin/sh", Some(Shell)),
        ("#!/usr/bin/env -S node --experimental-modules", Some(JavaScript)),
        ("#!/usr/bin/env ruby", Some(Ruby)),
        ("#!/usr/bin/env FOO=1 perl", Some(Perl)),
        ("#!/usr/bin/env", None),
        ("#!/opt/custom/interpreter", None),
        ("# not a shebang", None),
    ];
    for (line, expected) in cases {
        assert_eq!(Language::from_shebang(line), *expected, "{line}");
    }
}

#[test]
fn detection_prefers_the_path_then_the_shebang() {
    assert_eq!(Language::detect("bin/deploy", b"#!/usr/bin/env bash\necho hi\n"), Some(Shell));
    assert_eq!(Language::detect("bin/tool", b"#!/usr/bin/env python3\n"), Some(Python));
    assert_eq!(Language::detect("script.rb", b"#!/usr/bin/env python3\n"), Some(Ruby));
    assert_eq!(Language::detect("bin/data", b"\xff\xfe binary"), None);
}

#[test]
fn a_header_is_c_unless_it_shows_cpp_only_syntax() {
    let c_header = b"/* A C header; C++ users: this has no class or namespace. */\n#ifdef __cplusplus\nextern \"C\" {\n#endif\nint ring_len(const struct ring *r);\n#ifdef __cplusplus\n}\n#endif\n";
    assert_eq!(Language::detect("ring.h", c_header), Some(C));
    let cpp_headers: &[&[u8]] = &[
        b"#pragma once\nnamespace geo {\nstruct Point { double x, y; };\n}\n",
        b"template <typename T>\nT max(T a, T b);\n",
        b"class Widget {\npublic:\n  Widget();\n};\n",
        b"#include <string>\nvoid greet(const std::string& name);\n",
    ];
    for header in cpp_headers {
        assert_eq!(Language::detect("geo.h", header), Some(Cpp), "{}", String::from_utf8_lossy(header));
    }
    assert_eq!(Language::from_path("geo.h"), Some(C), "the path alone cannot tell");
}

#[test]
fn names_are_stable_lowercase_identifiers_that_round_trip() {
    for language in Language::ALL {
        let name = language.name();
        assert_eq!(name, name.to_ascii_lowercase());
        assert_eq!(name.parse::<Language>().unwrap(), *language);
        assert_eq!(serde_json::to_string(language).unwrap(), format!("\"{name}\""));
        assert_eq!(language.to_string(), name);
    }
    assert!("klingon".parse::<Language>().is_err());
    let with_grammar: Vec<_> = Language::ALL.iter().filter(|l| l.has_grammar()).map(|l| l.name()).collect();
    assert_eq!(
        with_grammar,
        ["rust", "python", "javascript", "typescript", "tsx", "go", "java", "c", "cpp", "ruby"]
    );
}
