module github.com/alphaforge/alphaforge-cache/bindings/go

go 1.19
