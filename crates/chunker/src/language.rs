//! Which language a file is written in, from its path, a shebang line, or (for `.h`) a glance at its content.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ChunkError;

/// A language ledge recognises. The first ten have a tree-sitter grammar and are chunked by definitions
/// ([`Language::has_grammar`]); the others are named so that search can filter by them, and use line windows.
///
/// Serialized as its [`name`](Language::name), e.g. `"rust"`, `"cpp"`, `"tsx"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Language {
    Rust,
    Python,
    JavaScript,
    TypeScript,
    Tsx,
    Go,
    Java,
    C,
    Cpp,
    Ruby,
    // Line-window languages.
    CSharp,
    Clojure,
    CMake,
    Css,
    Dart,
    Dockerfile,
    Elixir,
    Erlang,
    GraphQL,
    Haskell,
    Hcl,
    Html,
    Ini,
    Json,
    Kotlin,
    Lua,
    Makefile,
    Markdown,
    Nix,
    ObjectiveC,
    Ocaml,
    Perl,
    Php,
    PowerShell,
    Protobuf,
    R,
    Scala,
    Shell,
    Sql,
    Svelte,
    Swift,
    Toml,
    Vue,
    Xml,
    Yaml,
    Zig,
}

impl Language {
    /// Every language, grammar-backed ones first.
    pub const ALL: &'static [Language] = &[
        Self::Rust,
        Self::Python,
        Self::JavaScript,
        Self::TypeScript,
        Self::Tsx,
        Self::Go,
        Self::Java,
        Self::C,
        Self::Cpp,
        Self::Ruby,
        Self::CSharp,
        Self::Clojure,
        Self::CMake,
        Self::Css,
        Self::Dart,
        Self::Dockerfile,
        Self::Elixir,
        Self::Erlang,
        Self::GraphQL,
        Self::Haskell,
        Self::Hcl,
        Self::Html,
        Self::Ini,
        Self::Json,
        Self::Kotlin,
        Self::Lua,
        Self::Makefile,
        Self::Markdown,
        Self::Nix,
        Self::ObjectiveC,
        Self::Ocaml,
        Self::Perl,
        Self::Php,
        Self::PowerShell,
        Self::Protobuf,
        Self::R,
        Self::Scala,
        Self::Shell,
        Self::Sql,
        Self::Svelte,
        Self::Swift,
        Self::Toml,
        Self::Vue,
        Self::Xml,
        Self::Yaml,
        Self::Zig,
    ];

    /// The stable lowercase identifier used in chunks, filters and serialized form.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rust => "rust",
            Self::Python => "python",
            Self::JavaScript => "javascript",
            Self::TypeScript => "typescript",
            Self::Tsx => "tsx",
            Self::Go => "go",
            Self::Java => "java",
            Self::C => "c",
            Self::Cpp => "cpp",
            Self::Ruby => "ruby",
            Self::CSharp => "csharp",
            Self::Clojure => "clojure",
            Self::CMake => "cmake",
            Self::Css => "css",
            Self::Dart => "dart",
            Self::Dockerfile => "dockerfile",
            Self::Elixir => "elixir",
            Self::Erlang => "erlang",
            Self::GraphQL => "graphql",
            Self::Haskell => "haskell",
            Self::Hcl => "hcl",
            Self::Html => "html",
            Self::Ini => "ini",
            Self::Json => "json",
            Self::Kotlin => "kotlin",
            Self::Lua => "lua",
            Self::Makefile => "makefile",
            Self::Markdown => "markdown",
            Self::Nix => "nix",
            Self::ObjectiveC => "objectivec",
            Self::Ocaml => "ocaml",
            Self::Perl => "perl",
            Self::Php => "php",
            Self::PowerShell => "powershell",
            Self::Protobuf => "protobuf",
            Self::R => "r",
            Self::Scala => "scala",
            Self::Shell => "shell",
            Self::Sql => "sql",
            Self::Svelte => "svelte",
            Self::Swift => "swift",
            Self::Toml => "toml",
            Self::Vue => "vue",
            Self::Xml => "xml",
            Self::Yaml => "yaml",
            Self::Zig => "zig",
        }
    }

    /// Whether files of this language are parsed into definitions (otherwise they get line windows).
    pub fn has_grammar(self) -> bool {
        matches!(
            self,
            Self::Rust
                | Self::Python
                | Self::JavaScript
                | Self::TypeScript
                | Self::Tsx
                | Self::Go
                | Self::Java
                | Self::C
                | Self::Cpp
                | Self::Ruby
        )
    }

    /// Detects the language of a file from its path and, failing that, its content.
    ///
    /// The path decides first ([`Language::from_path`]). A `.h` header is C unless its first 16 KiB show
    /// C++-only syntax outside comments and preprocessor lines (`namespace`, `template`, `class X {`,
    /// `public:`, `std::`, …), since C++ headers commonly use `.h` too. A path that says nothing is decided by
    /// a `#!` shebang line ([`Language::from_shebang`]). `None` means unknown text.
    pub fn detect(path: &str, content: &[u8]) -> Option<Self> {
        match Self::from_path(path) {
            Some(Self::C) if extension(file_name(path)).is_some_and(|ext| ext.eq_ignore_ascii_case("h")) => {
                Some(if looks_like_cpp(content) { Self::Cpp } else { Self::C })
            }
            Some(language) => Some(language),
            None => {
                let first_line = content.split(|&b| b == b'\n').next().unwrap_or_default();
                std::str::from_utf8(first_line).ok().and_then(Self::from_shebang)
            }
        }
    }

    /// The language implied by a path's file name or extension (case-insensitive), e.g. `src/main.rs`,
    /// `Makefile`, `Dockerfile.prod`, `app.mjs`. `.h` maps to C here; see [`Language::detect`].
    pub fn from_path(path: &str) -> Option<Self> {
        let name = file_name(path);
        let lower = name.to_ascii_lowercase();
        if let Some(language) = from_file_name(&lower) {
            return Some(language);
        }
        from_extension(&extension(&lower)?.to_ascii_lowercase())
    }

    /// The language of a script from its first line, e.g. `#!/usr/bin/env python3` or `#!/bin/bash -e`.
    pub fn from_shebang(first_line: &str) -> Option<Self> {
        let rest = first_line.strip_prefix("#!")?.trim();
        let mut words = rest.split_whitespace();
        let mut program = base_name(words.next()?);
        if program == "env" {
            // `env [-S] [-i] [NAME=value]... program`
            program = base_name(words.find(|word| !word.starts_with('-') && !word.contains('='))?);
        }
        let program = program.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
        Some(match program {
            "python" | "pypy" => Self::Python,
            "sh" | "bash" | "zsh" | "dash" | "ksh" | "ash" | "fish" => Self::Shell,
            "node" | "nodejs" | "deno" | "bun" => Self::JavaScript,
            "ts-node" | "tsx" => Self::TypeScript,
            "ruby" | "jruby" => Self::Ruby,
            "perl" => Self::Perl,
            "php" => Self::Php,
            "lua" | "luajit" => Self::Lua,
            "Rscript" => Self::R,
            "pwsh" => Self::PowerShell,
            "elixir" => Self::Elixir,
            "escript" => Self::Erlang,
            "make" => Self::Makefile,
            _ => return None,
        })
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Language {
    type Err = ChunkError;

    /// Parses a [`Language::name`].
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .copied()
            .find(|language| language.name() == name)
            .ok_or_else(|| ChunkError::invalid("language", format!("unknown language {name:?}")))
    }
}

fn file_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

fn extension(name: &str) -> Option<&str> {
    let (stem, ext) = name.rsplit_once('.')?;
    (!stem.is_empty()).then_some(ext)
}

fn base_name(program: &str) -> &str {
    program.rsplit('/').next().unwrap_or(program)
}

fn from_file_name(lower: &str) -> Option<Language> {
    use Language::*;
    Some(match lower {
        "makefile" | "gnumakefile" | "bsdmakefile" => Makefile,
        "dockerfile" | "containerfile" => Dockerfile,
        "cmakelists.txt" => CMake,
        "rakefile" | "gemfile" | "guardfile" | "vagrantfile" | "podfile" | "brewfile" | "capfile" => Ruby,
        "cargo.lock" | "pipfile" | "poetry.lock" => Toml,
        ".bashrc" | ".bash_profile" | ".zshrc" | ".profile" | ".envrc" => Shell,
        ".gitconfig" | ".editorconfig" => Ini,
        _ if lower.starts_with("dockerfile.") || lower.ends_with(".dockerfile") => Dockerfile,
        _ if lower.starts_with("makefile.") => Makefile,
        _ => return None,
    })
}

fn from_extension(ext: &str) -> Option<Language> {
    use Language::*;
    Some(match ext {
        "rs" => Rust,
        "py" | "pyi" | "pyw" => Python,
        "js" | "mjs" | "cjs" | "jsx" => JavaScript,
        "ts" | "mts" | "cts" => TypeScript,
        "tsx" => Tsx,
        "go" => Go,
        "java" => Java,
        "c" | "h" => C,
        "cc" | "cpp" | "cxx" | "c++" | "hh" | "hpp" | "hxx" | "h++" | "ipp" | "tpp" | "inl" | "cppm"
        | "ixx" => Cpp,
        "rb" | "rake" | "gemspec" | "ru" => Ruby,
        "cs" | "csx" => CSharp,
        "clj" | "cljs" | "cljc" | "edn" => Clojure,
        "cmake" => CMake,
        "css" | "scss" | "sass" | "less" => Css,
        "dart" => Dart,
        "ex" | "exs" => Elixir,
        "erl" | "hrl" => Erlang,
        "graphql" | "gql" => GraphQL,
        "hs" | "lhs" => Haskell,
        "tf" | "tfvars" | "hcl" => Hcl,
        "html" | "htm" | "xhtml" => Html,
        "ini" | "cfg" | "conf" | "properties" => Ini,
        "json" | "jsonc" | "json5" | "jsonl" | "ndjson" | "geojson" => Json,
        "kt" | "kts" => Kotlin,
        "lua" => Lua,
        "mk" | "mak" => Makefile,
        "md" | "markdown" | "mdx" => Markdown,
        "nix" => Nix,
        "m" | "mm" => ObjectiveC,
        "ml" | "mli" => Ocaml,
        "pl" | "pm" | "t" => Perl,
        "php" => Php,
        "ps1" | "psm1" | "psd1" => PowerShell,
        "proto" => Protobuf,
        "r" => R,
        "scala" | "sc" | "sbt" => Scala,
        "sh" | "bash" | "zsh" | "ksh" | "fish" => Shell,
        "sql" => Sql,
        "svelte" => Svelte,
        "swift" => Swift,
        "toml" => Toml,
        "vue" => Vue,
        "xml" | "xsd" | "xsl" | "xslt" | "svg" | "plist" | "csproj" => Xml,
        "yaml" | "yml" => Yaml,
        "zig" => Zig,
        _ => return None,
    })
}

/// How much of a `.h` file [`looks_like_cpp`] reads.
const HEADER_SNIFF_BYTES: usize = 16 * 1024;

/// Whether a header's first bytes contain syntax that only C++ has. Comments and preprocessor lines are
/// skipped, so `#ifdef __cplusplus` guards in C headers do not count.
fn looks_like_cpp(content: &[u8]) -> bool {
    const CPP_WORDS: &[&str] =
        &["namespace", "template", "virtual", "constexpr", "nullptr", "typename", "decltype", "noexcept"];
    let head = &content[..content.len().min(HEADER_SNIFF_BYTES)];
    let text = String::from_utf8_lossy(head);
    let mut in_block_comment = false;
    for raw in text.lines() {
        let mut line = raw.trim();
        if in_block_comment {
            match line.find("*/") {
                Some(end) => {
                    in_block_comment = false;
                    line = line[end + 2..].trim();
                }
                None => continue,
            }
        }
        if let Some(start) = line.find("/*") {
            if !line[start..].contains("*/") {
                in_block_comment = true;
            }
            line = line[..start].trim();
        }
        if let Some(start) = line.find("//") {
            line = line[..start].trim();
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with("class ")
            || line.starts_with("public:")
            || line.starts_with("private:")
            || line.starts_with("protected:")
            || line.contains("std::")
        {
            return true;
        }
        let mut words = line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'));
        if words.any(|word| CPP_WORDS.contains(&word)) {
            return true;
        }
    }
    false
}
