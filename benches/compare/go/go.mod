module fibra.dev/compare

go 1.22
