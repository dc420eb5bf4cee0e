package oss

import (
	"context"
	"fmt"
	"sync"

	osscred "github.com/aliyun/alibabacloud-oss-go-sdk-v2/oss/credentials"
	"github.com/aliyun/credentials-go/credentials/providers"
)

// CredentialsProvider is what the client signs requests with: the SDK's
// provider interface.
type CredentialsProvider = osscred.CredentialsProvider

// DefaultCredentials is credentials-go's default chain: the environment
// (ALIBABA_CLOUD_ACCESS_KEY_ID, ALIBABA_CLOUD_ACCESS_KEY_SECRET and, for STS,
// ALIBABA_CLOUD_SECURITY_TOKEN), OIDC (RRSA), the CLI profile, the
// credentials file, the ECS RAM role, and a credentials URI.
//
// Set ALIBABA_CLOUD_ECS_METADATA_DISABLED=true where no ECS metadata service
// exists, or a failed lookup probes it.
func DefaultCredentials() CredentialsProvider {
	return FromCredentialsGo(providers.NewDefaultCredentialsProvider())
}

// FromCredentialsGo adapts any credentials-go provider (RAM role ARN, OIDC,
// profile, …) to the SDK. The chain keeps mutable state and does no
// locking, so calls are serialised.
func FromCredentialsGo(p providers.CredentialsProvider) CredentialsProvider {
	a := &credentialsAdapter{p: p}
	return osscred.CredentialsProviderFunc(a.get)
}

// StaticCredentials signs with fixed keys; token is empty unless they are
// STS credentials.
func StaticCredentials(accessKeyID, accessKeySecret, securityToken string) CredentialsProvider {
	return osscred.NewStaticCredentialsProvider(accessKeyID, accessKeySecret, securityToken)
}

type credentialsAdapter struct {
	mu sync.Mutex
	p  providers.CredentialsProvider
}

func (a *credentialsAdapter) get(ctx context.Context) (osscred.Credentials, error) {
	if err := ctx.Err(); err != nil {
		return osscred.Credentials{}, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	c, err := a.p.GetCredentials()
	if err != nil {
		return osscred.Credentials{}, fmt.Errorf("get credentials: %w", err)
	}
	if c.AccessKeyId == "" || c.AccessKeySecret == "" {
		return osscred.Credentials{}, fmt.Errorf("get credentials from %s: empty access key", c.ProviderName)
	}
	return osscred.Credentials{
		AccessKeyID:     c.AccessKeyId,
		AccessKeySecret: c.AccessKeySecret,
		SecurityToken:   c.SecurityToken,
	}, nil
}
