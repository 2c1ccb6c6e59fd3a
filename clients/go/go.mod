module github.com/tarn-db/tarn/clients/go

go 1.19
