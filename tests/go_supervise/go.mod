module supervisetest

go 1.19
