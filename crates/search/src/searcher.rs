//! [`Searcher`]: one search, from a [`SearchRequest`] to a page of [`SearchHit`]s.
//!
//! 1. **Plan**: the request is checked in full (organization, limit, query size and syntax, mode, filters,
//!    cursor) before any index is touched.
//! 2. **Rank**, by mode, into one list of at most [`MAX_RESULTS`] chunks, best first:
//!    - `keyword`: BM25 from the keyword index, filters and exclusions applied by the index;
//!    - `semantic`: the query's embedding against the vector index (namespace = organization; the
//!      repository, language and path filters applied before top-k where the vector index has metadata
//!      indexes for them), then the chunks read back from the keyword index through the same filters and
//!      exclusions — so a vector can never bring in another organization's chunk;
//!    - `hybrid`: both, fused ([`Fusion`]), with the exact-symbol bonus;
//!    - `regex`: chunks prefiltered by the pattern's required words (or, without any, all of the
//!      organization's chunks passing the filters), scanned in index order up to
//!      [`SearchOptions::regex_scan_chunks`]; scored by the number of matches;
//!    - `symbol`: chunks whose symbol starts with the name, exact matches first.
//! 3. **Shape**: overlapping chunks of one file collapse into the best, a file's hits past
//!    [`MAX_HITS_PER_FILE`] move below the rest, and the page at the cursor's offset gets its snippets.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use ledge_embed::Embedder;
use ledge_keyword::{ChunkDoc, KeywordIndex, KeywordQuery, SymbolFilter};
use ledge_vector::{MetadataIndexType, Metric, QueryOptions, VectorIndex};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use crate::cursor;
use crate::error::SearchError;
use crate::pattern::{self, Pattern};
use crate::rank::{self, FusionWeights, MAX_HITS_PER_FILE, Ranked};
use crate::request::{DEFAULT_LIMIT, Fusion, MAX_LIMIT, MAX_RESULTS, Mode, SearchRequest};
use crate::snippet::{Highlighter, Snippet, snippet};
use crate::syntax::{self, ParsedQuery, Term};

/// How a [`Searcher`] bounds its work and fuses rankings.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchOptions {
    /// Hits of one file before the rest of the file's hits are pushed down (default 3).
    pub max_hits_per_file: usize,
    /// Chunks a regex search reads at most (default 20,000): past it the results say they are partial.
    pub regex_scan_chunks: usize,
    /// Chunks a symbol search considers at most (default 5,000).
    pub symbol_scan_chunks: usize,
    /// Nearest vectors asked of the vector index at most (1..=100, default 100); a page asks for twice
    /// the hits it needs up to it, at least 40.
    pub semantic_candidates: usize,
    /// How hybrid mode weighs the two rankings.
    pub fusion: FusionWeights,
}

impl Default for SearchOptions {
    fn default() -> Self {
        SearchOptions {
            max_hits_per_file: MAX_HITS_PER_FILE,
            regex_scan_chunks: 20_000,
            symbol_scan_chunks: 5_000,
            semantic_candidates: 100,
            fusion: FusionWeights::default(),
        }
    }
}

/// One result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchHit {
    /// `owner/name`.
    pub repo: String,
    pub commit: String,
    pub path: String,
    pub start_line: u32,
    pub end_line: u32,
    /// The definition the chunk is (a part of), when there is exactly one.
    pub symbol: Option<String>,
    /// Every definition the chunk holds or names (all of them for a chunk merged from several small ones).
    #[serde(default)]
    pub symbols: Vec<String>,
    pub language: String,
    /// Higher is better; comparable within one result list only (BM25, cosine, fused score, number of
    /// regex matches, symbol closeness, by mode).
    pub score: f32,
    pub snippet: Snippet,
}

/// A page of results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchResults {
    /// The mode that ran (`keyword` when `hybrid` or `semantic` was asked without a model).
    pub mode: Mode,
    pub hits: Vec<SearchHit>,
    /// Pass it back as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
    /// Things the caller should know about these results (keyword-only without a model, a partial regex
    /// scan).
    pub notices: Vec<String>,
    /// Time spent in the search, in milliseconds.
    pub took_ms: f64,
}

/// A checked request.
#[derive(Debug)]
struct Plan {
    org: String,
    mode: Mode,
    query: ParsedQuery,
    /// The name searched for in symbol mode.
    symbol_name: Option<String>,
    limit: usize,
    offset: usize,
    fusion: Fusion,
    hash: u64,
}

/// What the vector index found for a query: chunk ids and scores (higher is closer), best first.
struct SemanticMatches {
    scores: Vec<(String, f32)>,
}

/// What the vector index can filter on before top-k, learnt on the first semantic search.
#[derive(Debug)]
struct VectorSupport {
    metric: Metric,
    /// String metadata indexes, by property.
    indexed: Vec<String>,
}

/// Searches the chunks of one organization at a time. `Send + Sync`: share it with an `Arc`.
pub struct Searcher {
    keyword: Arc<KeywordIndex>,
    vectors: Arc<dyn VectorIndex>,
    embedder: Option<Arc<dyn Embedder>>,
    /// Query vectors already computed ([`Searcher::with_query_cache`]).
    query_cache: Option<ledge_indexing::EmbeddingCache>,
    options: SearchOptions,
    warned_no_model: AtomicBool,
    vector_support: OnceCell<VectorSupport>,
}

impl std::fmt::Debug for Searcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Searcher")
            .field("keyword", &self.keyword)
            .field("embedder", &self.embedder.as_ref().map(|e| e.model_id().to_owned()))
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

fn rendered(terms: &[Term]) -> String {
    terms.iter().map(Term::to_string).collect::<Vec<_>>().join(" ")
}

impl Searcher {
    /// A searcher over the two indexes; `embedder` is `None` when no model is installed (then every
    /// search is keyword-only and says so).
    pub fn new(
        keyword: Arc<KeywordIndex>,
        vectors: Arc<dyn VectorIndex>,
        embedder: Option<Arc<dyn Embedder>>,
        options: SearchOptions,
    ) -> Searcher {
        Searcher {
            keyword,
            vectors,
            embedder,
            query_cache: None,
            options,
            warned_no_model: AtomicBool::new(false),
            vector_support: OnceCell::new(),
        }
    }

    /// Looks each query's vector up in `cache` (the `embedding-cache` namespace, by organization, model
    /// and text) before asking the embedder, and caches what it computes: for an embedder behind HTTP, a
    /// repeated query costs a KV read instead of a round trip to the provider (and its price). A cache
    /// that fails is a miss, never a failed search.
    pub fn with_query_cache(mut self, cache: ledge_indexing::EmbeddingCache) -> Searcher {
        self.query_cache = Some(cache);
        self
    }

    /// The query's vector: from the cache when there is one and it knows the text, else from the
    /// embedder (then cached).
    async fn query_vector(
        &self,
        embedder: &dyn Embedder,
        org: &str,
        text: String,
    ) -> Result<Vec<f32>, SearchError> {
        let (model, dimensions) = (embedder.model_id(), embedder.dimensions());
        if let Some(cache) = &self.query_cache {
            match cache.get_many(org, model, dimensions, &[text.as_str()]).await {
                Ok(found) => {
                    if let Some(Some(vector)) = found.into_iter().next() {
                        return Ok(vector);
                    }
                }
                Err(error) => tracing::warn!(%error, "the query embedding cache cannot be read"),
            }
        }
        let vector =
            embedder.embed(std::slice::from_ref(&text)).await?.into_iter().next().unwrap_or_default();
        if let Some(cache) = &self.query_cache
            && let Err(error) = cache.put(org, model, &text, &vector).await
        {
            tracing::warn!(%error, "the query embedding cannot be cached");
        }
        Ok(vector)
    }

    /// Whether semantic search is available (a model is installed).
    pub fn has_model(&self) -> bool {
        self.embedder.is_some()
    }

    /// One page of results for `request`, only ever from `request.org`'s chunks.
    pub async fn search(&self, request: &SearchRequest) -> Result<SearchResults, SearchError> {
        let started = Instant::now();
        let plan = plan(request)?;
        let mut notices = Vec::new();
        let mut mode = plan.mode;
        if matches!(mode, Mode::Hybrid | Mode::Semantic) && self.embedder.is_none() {
            if !self.warned_no_model.swap(true, Ordering::Relaxed) {
                tracing::warn!("{}", ledge_embed::NO_MODEL_MESSAGE);
            }
            notices.push(ledge_embed::NO_MODEL_MESSAGE.to_owned());
            mode = Mode::Keyword;
        }
        let depth = (plan.offset + plan.limit).min(MAX_RESULTS);
        let candidates = (depth * 2).clamp(50, ledge_keyword::MAX_LIMIT);
        let (ranked, highlighter) = match mode {
            Mode::Keyword => {
                let mut ranked = self.keyword_ranking(&plan, candidates)?;
                rank::sort(&mut ranked);
                (ranked, Highlighter::for_terms(&plan.query.terms))
            }
            Mode::Semantic => {
                (self.semantic_ranking(&plan).await?, Highlighter::for_terms(&plan.query.terms))
            }
            Mode::Hybrid => {
                // The keyword search runs on the blocking pool while this task embeds the query and
                // asks the vector index: the two take about as long, and they need not wait for each
                // other. Only reading the vector hits back waits for the keyword hits (not read twice).
                let query = Self::keyword_query(&plan, rendered(&plan.query.terms), candidates);
                let index = self.keyword.clone();
                let keyword_search = tokio::task::spawn_blocking(move || index.search(&query));
                let matches = self.semantic_matches(&plan).await;
                let hits = keyword_search.await.map_err(|e| SearchError::Task(e.to_string()))??;
                let keyword: Vec<Ranked> =
                    hits.into_iter().map(|h| Ranked { doc: h.doc, score: h.score }).collect();
                let semantic = match matches? {
                    Some(matches) => self.semantic_documents(&plan, &matches, &keyword)?,
                    None => Vec::new(),
                };
                let names = symbol_names(&plan.query.terms);
                let fused = rank::fuse(keyword, semantic, plan.fusion, self.options.fusion, &names);
                (fused, Highlighter::for_terms(&plan.query.terms))
            }
            Mode::Regex => {
                let pattern = pattern::compile(plan.query.pattern.as_deref().unwrap_or_default())?;
                let highlighter = Highlighter::for_regex(pattern.regex.clone());
                let (ranked, notice) = self.regex_ranking(&plan, pattern).await?;
                notices.extend(notice);
                (ranked, highlighter)
            }
            Mode::Symbol => {
                let name = plan.symbol_name.clone().unwrap_or_default();
                let ranked = self.symbol_ranking(&plan, &name)?;
                (ranked, Highlighter::for_terms(&[Term::Word(name)]))
            }
        };
        let mut ranked = rank::dedupe_and_diversify(ranked, self.options.max_hits_per_file);
        ranked.truncate(MAX_RESULTS);
        let end = (plan.offset + plan.limit).min(ranked.len());
        let next_cursor = (ranked.len() > end).then(|| cursor::encode(end, plan.hash));
        let hits = ranked
            .get(plan.offset.min(end)..end)
            .unwrap_or_default()
            .iter()
            .map(|hit| {
                let matches = highlighter.matches(&hit.doc.text);
                SearchHit {
                    repo: hit.doc.repo.clone(),
                    commit: hit.doc.commit.clone(),
                    path: hit.doc.path.clone(),
                    start_line: hit.doc.start_line,
                    end_line: hit.doc.end_line,
                    symbol: hit.doc.symbol.clone(),
                    symbols: hit.doc.symbols.clone(),
                    language: hit.doc.language.clone(),
                    score: hit.score,
                    snippet: snippet(&hit.doc.text, hit.doc.start_line, &matches),
                }
            })
            .collect();
        Ok(SearchResults { mode, hits, next_cursor, notices, took_ms: started.elapsed().as_secs_f64() * 1e3 })
    }

    /// The keyword query of a plan: its terms, filters and exclusions.
    fn keyword_query(plan: &Plan, text: String, limit: usize) -> KeywordQuery {
        let mut query = KeywordQuery::new(plan.org.clone(), text);
        query.repos = plan.query.repos.clone();
        query.languages = plan.query.languages.clone();
        query.path_prefix = plan.query.path.clone();
        query.limit = limit;
        query.exclude = plan.query.excluded.iter().map(Term::to_string).collect();
        query.symbol = plan.query.symbol.clone().map(SymbolFilter::Prefix);
        query
    }

    fn keyword_ranking(&self, plan: &Plan, limit: usize) -> Result<Vec<Ranked>, SearchError> {
        let query = Self::keyword_query(plan, rendered(&plan.query.terms), limit);
        let hits = self.keyword.search(&query)?;
        Ok(hits.into_iter().map(|h| Ranked { doc: h.doc, score: h.score }).collect())
    }

    async fn vector_support(&self) -> Result<&VectorSupport, SearchError> {
        self.vector_support
            .get_or_try_init(|| async {
                let metric = self.vectors.describe().await?.metric;
                let indexed = self
                    .vectors
                    .list_metadata_indexes()
                    .await?
                    .into_iter()
                    .filter(|i| i.index_type == MetadataIndexType::String)
                    .map(|i| i.property)
                    .collect();
                Ok::<_, SearchError>(VectorSupport { metric, indexed })
            })
            .await
    }

    /// The filter the vector index can apply before top-k: only properties it has metadata indexes for.
    fn vector_filter(support: &VectorSupport, query: &ParsedQuery) -> Option<Value> {
        let mut filter = serde_json::Map::new();
        let indexed = |p: &str| support.indexed.iter().any(|i| i == p);
        if !query.repos.is_empty() && indexed("repo") {
            filter.insert("repo".into(), json!({ "$in": query.repos }));
        }
        if !query.languages.is_empty() && indexed("language") {
            filter.insert("language".into(), json!({ "$in": query.languages }));
        }
        if let Some(prefix) = query.path.as_deref().filter(|p| !p.is_empty() && p.len() <= 64)
            && indexed("path")
        {
            let mut upper = prefix.to_owned();
            if let Some(last) = upper.pop() {
                let next = char::from_u32(u32::from(last) + 1).unwrap_or(char::MAX);
                upper.push(next);
                filter.insert("path".into(), json!({ "$gte": prefix, "$lt": upper }));
            }
        }
        (!filter.is_empty()).then_some(Value::Object(filter))
    }

    /// The nearest chunks to the query's embedding that pass the filters, best first (empty when the
    /// model knows none of the query's words).
    async fn semantic_ranking(&self, plan: &Plan) -> Result<Vec<Ranked>, SearchError> {
        match self.semantic_matches(plan).await? {
            Some(matches) => self.semantic_documents(plan, &matches, &[]),
            None => Ok(Vec::new()),
        }
    }

    /// The vector index's nearest chunks to the query's embedding, under the filters it can apply
    /// (`None` without a model, or when the model knows none of the query's words).
    async fn semantic_matches(&self, plan: &Plan) -> Result<Option<SemanticMatches>, SearchError> {
        let Some(embedder) = &self.embedder else { return Ok(None) };
        let text = plan.query.free_text();
        let values = self.query_vector(embedder.as_ref(), &plan.org, text).await?;
        if values.iter().all(|v| *v == 0.0) {
            return Ok(None);
        }
        let support = self.vector_support().await?;
        let depth = (plan.offset + plan.limit).min(MAX_RESULTS);
        let filter = Self::vector_filter(support, &plan.query);
        let q = &plan.query;
        // Filters the vector index cannot apply before top-k thin the hits out afterwards: ask for more.
        let post_filtered = filter.is_none()
            && (!q.repos.is_empty()
                || !q.languages.is_empty()
                || q.path.is_some()
                || q.symbol.is_some()
                || !q.excluded.is_empty());
        let wanted = if post_filtered { self.options.semantic_candidates } else { (depth * 2).max(40) };
        let options = QueryOptions {
            top_k: wanted.min(self.options.semantic_candidates).clamp(1, 100),
            namespace: Some(plan.org.clone()),
            filter,
            ..QueryOptions::default()
        };
        let result = self.vectors.query(&values, options).await?;
        let sign = if support.metric.higher_is_closer() { 1.0 } else { -1.0 };
        let scores = result.matches.into_iter().map(|m| (m.id, m.score * sign)).collect();
        Ok(Some(SemanticMatches { scores }))
    }

    /// The chunks of `matches` that pass the plan's filters and exclusions, best first, read back
    /// through the keyword index (under the plan's organization). Chunks already in `known` (keyword
    /// hits of the same plan, so past the same filters) are not read again.
    fn semantic_documents(
        &self,
        plan: &Plan,
        matches: &SemanticMatches,
        known: &[Ranked],
    ) -> Result<Vec<Ranked>, SearchError> {
        let known: HashMap<&str, &ChunkDoc> =
            known.iter().map(|r| (r.doc.chunk_id.as_str(), &r.doc)).collect();
        let ids: Vec<String> = matches
            .scores
            .iter()
            .filter(|(id, _)| !known.contains_key(id.as_str()))
            .map(|(id, _)| id.clone())
            .collect();
        let filters = Self::keyword_query(plan, String::new(), ledge_keyword::MAX_LIMIT);
        let mut chunks = self.keyword.chunks(&filters, &ids)?;
        chunks
            .extend(matches.scores.iter().filter_map(|(id, _)| known.get(id.as_str()).map(|d| (*d).clone())));
        let scores: HashMap<&str, f32> =
            matches.scores.iter().map(|(id, score)| (id.as_str(), *score)).collect();
        let mut ranked: Vec<Ranked> = chunks
            .into_iter()
            .map(|doc| {
                let score = scores.get(doc.chunk_id.as_str()).copied().unwrap_or(f32::MIN);
                Ranked { doc, score }
            })
            .collect();
        rank::sort(&mut ranked);
        Ok(ranked)
    }

    /// Chunks matching the pattern: prefiltered by its required words, scanned on the blocking pool.
    async fn regex_ranking(
        &self,
        plan: &Plan,
        pattern: Pattern,
    ) -> Result<(Vec<Ranked>, Option<String>), SearchError> {
        let query = Self::keyword_query(plan, pattern.required_words.join(" "), ledge_keyword::MAX_LIMIT);
        let keyword = self.keyword.clone();
        let max = self.options.regex_scan_chunks;
        let regex = pattern.regex;
        let scanned = tokio::task::spawn_blocking(move || {
            let mut ranked = Vec::new();
            let summary = keyword.scan(&query, max, |doc: ChunkDoc| {
                let count = regex.find_iter(&doc.text).take(1000).count();
                if count > 0 {
                    ranked.push(Ranked { doc, score: count as f32 });
                }
                ranked.len() < MAX_RESULTS
            })?;
            Ok::<_, SearchError>((ranked, summary))
        })
        .await
        .map_err(|e| SearchError::Task(e.to_string()))??;
        let (mut ranked, summary) = scanned;
        rank::sort(&mut ranked);
        let notice = (!summary.complete).then(|| {
            format!(
                "regex search read {} of the {} chunks that could match and stopped; the results may be \
                 incomplete: add a literal word to the pattern, or a repo:, lang: or path: filter",
                summary.visited, summary.matched
            )
        });
        Ok((ranked, notice))
    }

    /// Chunks with a name (their symbol or another of their names) starting with `name`
    /// (case-insensitively): exact matches first (same case before other case), then the closest in length;
    /// a chunk scores by its best name.
    fn symbol_ranking(&self, plan: &Plan, name: &str) -> Result<Vec<Ranked>, SearchError> {
        let mut query = Self::keyword_query(plan, String::new(), ledge_keyword::MAX_LIMIT);
        query.symbol = Some(SymbolFilter::Prefix(name.to_owned()));
        let lower = name.to_lowercase();
        let mut ranked = Vec::new();
        self.keyword.scan(&query, self.options.symbol_scan_chunks, |doc| {
            let closeness = |symbol: &String| {
                let folded = symbol.to_lowercase();
                if symbol == name {
                    3.0
                } else if folded == lower {
                    2.0
                } else if folded.starts_with(&lower) {
                    name.len() as f32 / symbol.len().max(1) as f32
                } else {
                    0.0
                }
            };
            let score = doc.symbol.iter().chain(&doc.symbols).map(closeness).fold(0.0, f32::max);
            ranked.push(Ranked { doc, score });
            true
        })?;
        rank::sort(&mut ranked);
        Ok(ranked)
    }
}

/// The names hybrid mode boosts a chunk for having as its symbol (lowercased): the whole query, and each
/// word shaped like an identifier (`parse_json`, `parseJson`, `HeaderMap`, `Vec::new`, `v2`). The plain words of a
/// sentence are not names: boosting them would put the `Literal` type first for "returns the literal
/// text", which the quality evaluation measured as worse than keyword search alone.
fn symbol_names(terms: &[Term]) -> Vec<String> {
    // An acronym (`HTTP`, `HIR`) is a plain word too: boosting those cost MRR@10 0.010 on the evaluation.
    let identifier = |word: &str| {
        let chars: Vec<char> = word.chars().collect();
        word.contains(['_', ':', '.'])
            || chars.iter().any(char::is_ascii_digit)
            || chars.windows(2).any(|pair| pair[0].is_lowercase() && pair[1].is_uppercase())
    };
    let mut names: Vec<String> = terms
        .iter()
        .filter(|t| terms.len() == 1 || matches!(t, Term::Word(w) if identifier(w)))
        .map(|t| t.text().to_lowercase())
        .collect();
    let whole = terms.iter().map(Term::text).collect::<Vec<_>>().join(" ").to_lowercase();
    if !names.contains(&whole) {
        names.push(whole);
    }
    names
}

/// Checks a request in full and turns it into a plan.
fn plan(request: &SearchRequest) -> Result<Plan, SearchError> {
    let org = request.org.trim();
    if org.is_empty() || org.contains('\0') {
        return Err(SearchError::invalid("org", "is required"));
    }
    let limit = request.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(SearchError::invalid("limit", format!("{limit} is not within 1..={MAX_LIMIT}")));
    }
    syntax::check_size(&request.q)?;
    let in_query = syntax::mode_of(&request.q)?;
    let mode = match (request.mode, in_query) {
        (Some(asked), Some(typed)) if asked != typed => {
            return Err(SearchError::invalid(
                "mode",
                format!("{asked} conflicts with `mode:{typed}` in the query"),
            ));
        }
        (asked, typed) => asked.or(typed).unwrap_or_default(),
    };
    let mut query =
        if mode == Mode::Regex { syntax::parse_regex(&request.q)? } else { syntax::parse(&request.q)? };
    for repo in &request.repos {
        let key = syntax::check_repo(repo)
            .map_err(|reason| SearchError::invalid("repo", format!("{repo:?} {reason}")))?;
        if !query.repos.contains(&key) {
            query.repos.push(key);
        }
    }
    for language in &request.languages {
        if language.trim().is_empty() {
            return Err(SearchError::invalid("lang", "is empty"));
        }
        let language = syntax::normalize_language(language);
        if !query.languages.contains(&language) {
            query.languages.push(language);
        }
    }
    if let Some(path) = &request.path {
        let path = syntax::normalize_path(path);
        match &query.path {
            Some(typed) if *typed != path => {
                return Err(SearchError::invalid(
                    "path",
                    format!("{path:?} conflicts with `path:{typed}` in the query"),
                ));
            }
            _ if path.is_empty() => {}
            _ => query.path = Some(path),
        }
    }
    query.mode = None;
    let mut mode = mode;
    let mut symbol_name = None;
    if mode != Mode::Regex && query.terms.is_empty() {
        if query.symbol.is_none() {
            return Err(SearchError::invalid(
                "q",
                "has nothing to search for: add words, a \"phrase\" or a sym: filter",
            ));
        }
        mode = Mode::Symbol;
    }
    if mode == Mode::Symbol {
        let name = match query.terms.as_slice() {
            [] => query.symbol.clone().unwrap_or_default(),
            [Term::Word(word)] => word.clone(),
            _ => {
                return Err(SearchError::invalid(
                    "q",
                    "has several words, but symbol mode takes one name (or sym:Name)",
                ));
            }
        };
        symbol_name = Some(name);
    }
    let fusion = request.fusion.unwrap_or_default();
    let canonical = query.to_string();
    let hash = cursor::query_hash([org, mode.as_str(), fusion.as_str(), canonical.as_str()]);
    let offset = match request.cursor.as_deref().filter(|c| !c.is_empty()) {
        Some(cursor) => cursor::decode(cursor, hash)?,
        None => 0,
    };
    if offset > MAX_RESULTS {
        return Err(SearchError::invalid("cursor", format!("points past the first {MAX_RESULTS} results")));
    }
    Ok(Plan { org: org.to_owned(), mode, query, symbol_name, limit, offset, fusion, hash })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(q: &str) -> SearchRequest {
        SearchRequest::new("acme", q)
    }

    #[test]
    fn every_bad_field_is_named() {
        let cases: Vec<(SearchRequest, &str)> = vec![
            (SearchRequest::new("", "x"), "org"),
            (SearchRequest { limit: Some(0), ..request("x") }, "limit"),
            (SearchRequest { limit: Some(101), ..request("x") }, "limit"),
            (request(""), "q"),
            (request(&"x".repeat(10 * 1024)), "q"),
            (request("foo:bar"), "q"),
            (request("-only"), "q"),
            (SearchRequest { mode: Some(Mode::Keyword), ..request("x mode:regex") }, "mode"),
            (SearchRequest { repos: vec!["nope".into()], ..request("x") }, "repo"),
            (SearchRequest { languages: vec![" ".into()], ..request("x") }, "lang"),
            (SearchRequest { path: Some("lib/".into()), ..request("x path:src/") }, "path"),
            (SearchRequest { cursor: Some("garbage".into()), ..request("x") }, "cursor"),
            (SearchRequest { mode: Some(Mode::Symbol), ..request("two words") }, "q"),
        ];
        for (request, field) in cases {
            let error = plan(&request).unwrap_err();
            assert_eq!(error.field(), Some(field), "{request:?}: {error}");
        }
    }

    #[test]
    fn a_cursor_is_bound_to_its_query() {
        let first = plan(&request("parse json lang:rust")).unwrap();
        let cursor = cursor::encode(20, first.hash);
        let same = SearchRequest { cursor: Some(cursor.clone()), ..request("lang:rust  parse json") };
        assert_eq!(plan(&same).unwrap().offset, 20, "the canonical query is the same");
        let other = SearchRequest { cursor: Some(cursor.clone()), ..request("parse json lang:go") };
        assert_eq!(plan(&other).unwrap_err().field(), Some("cursor"));
        let other_org =
            SearchRequest { org: "globex".into(), cursor: Some(cursor), ..request("parse json lang:rust") };
        assert_eq!(plan(&other_org).unwrap_err().field(), Some("cursor"));
    }

    #[test]
    fn only_identifiers_and_the_whole_query_are_boosted_as_symbol_names() {
        let terms = |q: &str| syntax::parse(q).unwrap().terms;
        assert_eq!(symbol_names(&terms("Widget")), ["widget"]);
        assert_eq!(
            symbol_names(&terms("returns the Literal of parse_json or HeaderMap v2 as HTTP")),
            ["parse_json", "headermap", "v2", "returns the literal of parse_json or headermap v2 as http"]
        );
        assert_eq!(symbol_names(&terms("Vec::new")), ["vec::new"]);
    }

    #[test]
    fn a_sym_filter_alone_is_a_symbol_search() {
        let plan = plan(&request("sym:Widget repo:acme/api")).unwrap();
        assert_eq!(plan.mode, Mode::Symbol);
        assert_eq!(plan.symbol_name.as_deref(), Some("Widget"));
        let regex = super::plan(&request("mode:regex fn\\s+\\w+")).unwrap();
        assert_eq!((regex.mode, regex.query.pattern.as_deref()), (Mode::Regex, Some("fn\\s+\\w+")));
    }
}
