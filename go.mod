module github.com/ossjobwatch/ossjobwatch

go 1.26.0

require (
	github.com/aliyun/alibabacloud-oss-go-sdk-v2 v1.6.1
	github.com/aliyun/credentials-go v1.4.14
)

require (
	github.com/alibabacloud-go/debug v1.0.1 // indirect
	github.com/stretchr/testify v1.12.1 // indirect
	golang.org/x/time v0.4.0 // indirect
	gopkg.in/ini.v1 v1.67.0 // indirect
)
