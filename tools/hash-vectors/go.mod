module edge-session/tools/hash-vectors

go 1.19
