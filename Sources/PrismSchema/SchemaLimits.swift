// The limits that keep a hostile schema or instance from exhausting the stack, memory or time of
// the thread that compiles or validates it. Each is far above what a real extraction schema needs.

enum SchemaLimits {
    /// Subschemas nested inside one another in a schema document (`properties` → a property's schema
    /// → `items` → ... counts each schema once). Real extraction schemas nest under 15 deep; checking a
    /// schema against the meta-schema takes up to 6 evaluations per level, within maxEvaluationDepth.
    static let maxSchemaDepth = 32
    /// Compiled subschemas per schema (every object or boolean in a schema position counts once):
    /// bounds compile time and memory for a schema a client sends with each request.
    static let maxSchemaNodes = 20_000
    /// Nested subschema evaluations during one validation, across `$ref`s and instance levels (a
    /// recursive schema spends about 2 per instance level). Each costs about 0.6 KB of stack in a
    /// release build and 2.6 KB in a debug build (measured), so the deepest validation fits in well
    /// under 1 MB; an answer nested deeper is refused with a violation rather than a crash.
    static let maxEvaluationDepth = 256
    /// Time one pattern may spend matching one string, in nanoseconds. Real patterns take
    /// microseconds; a catastrophically backtracking one can take minutes on a short answer, so past
    /// this the value is reported as not validated rather than holding the thread.
    static let maxPatternMatchTime: UInt64 = 250_000_000
    /// Alternatives of anyOf/oneOf whose first violation is quoted in the message of the failed keyword.
    static let maxQuotedBranches = 3
}
