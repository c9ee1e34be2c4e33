// Modules a plugin gets with `import PrismPluginKit`: the JSON reader and writer live in PrismJSON
// (shared with the server's schema validator) and are re-exported so plugins need one import.
@_exported import PrismJSON
