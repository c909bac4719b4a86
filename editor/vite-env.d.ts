// Vite's ambient types (CSS imports, import.meta.env) for the editor sources.
/// <reference types="vite/client" />
