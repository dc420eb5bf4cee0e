package oss

import (
	"cmp"
	"context"
	"errors"
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

// credentialsError marks a failure to obtain credentials, for ErrorCode.
type credentialsError struct{ err error }

func (e *credentialsError) Error() string { return e.err.Error() }

func (e *credentialsError) Unwrap() error { return e.err }

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
		return osscred.Credentials{}, &credentialsError{err: fmt.Errorf("get credentials: %w", err)}
	}
	if c.AccessKeyId == "" || c.AccessKeySecret == "" {
		return osscred.Credentials{}, &credentialsError{err: fmt.Errorf("get credentials from %s: empty access key", c.ProviderName)}
	}
	return osscred.Credentials{
		AccessKeyID:     c.AccessKeyId,
		AccessKeySecret: c.AccessKeySecret,
		SecurityToken:   c.SecurityToken,
	}, nil
}

// Credential sources a target can name.
const (
	SourceDefault    = "default"      // the credentials-go default chain
	SourceEnv        = "env"          // ALIBABA_CLOUD_ACCESS_KEY_ID/_SECRET (and _SECURITY_TOKEN)
	SourceProfile    = "profile"      // a profile of the Alibaba Cloud CLI's config file
	SourceRAMRoleARN = "ram_role_arn" // assume a RAM role with the default chain's keys
	SourceOIDC       = "oidc"         // RRSA: an OIDC token file exchanged for a role
)

// CredentialsSpec says where a target's credentials come from.
type CredentialsSpec struct {
	// Source is one of the Source constants. Defaults to SourceDefault.
	Source string
	// Profile is the CLI profile's name, for SourceProfile.
	Profile string
	// RoleARN, RoleSessionName and ExternalID are for SourceRAMRoleARN;
	// RoleARN and RoleSessionName also for SourceOIDC.
	RoleARN         string
	RoleSessionName string
	ExternalID      string
	// OIDCProviderARN and OIDCTokenFile are for SourceOIDC. Empty values
	// fall back to the ALIBABA_CLOUD_OIDC_* variables RRSA sets.
	OIDCProviderARN string
	OIDCTokenFile   string
}

// NewCredentials builds the provider a spec names. It does no I/O: keys
// are fetched, and errors about them surface, on the first call.
func NewCredentials(spec CredentialsSpec) (CredentialsProvider, error) {
	var (
		p   providers.CredentialsProvider
		err error
	)
	switch spec.Source {
	case "", SourceDefault:
		return DefaultCredentials(), nil
	case SourceEnv:
		p, err = providers.NewEnvironmentVariableCredentialsProviderBuilder().Build()
	case SourceProfile:
		if spec.Profile == "" {
			return nil, errors.New("credentials: profile: a profile name is required")
		}
		p, err = providers.NewCLIProfileCredentialsProviderBuilder().WithProfileName(spec.Profile).Build()
	case SourceRAMRoleARN:
		if spec.RoleARN == "" {
			return nil, errors.New("credentials: ram_role_arn: role_arn is required")
		}
		p, err = providers.NewRAMRoleARNCredentialsProviderBuilder().
			WithCredentialsProvider(providers.NewDefaultCredentialsProvider()).
			WithRoleArn(spec.RoleARN).
			WithRoleSessionName(cmp.Or(spec.RoleSessionName, "ossjobwatch")).
			WithExternalId(spec.ExternalID).
			Build()
	case SourceOIDC:
		p, err = providers.NewOIDCCredentialsProviderBuilder().
			WithRoleArn(spec.RoleARN).
			WithOIDCProviderARN(spec.OIDCProviderARN).
			WithOIDCTokenFilePath(spec.OIDCTokenFile).
			WithRoleSessionName(cmp.Or(spec.RoleSessionName, "ossjobwatch")).
			Build()
	default:
		return nil, fmt.Errorf("credentials: source %q: must be one of %s, %s, %s, %s, %s",
			spec.Source, SourceDefault, SourceEnv, SourceProfile, SourceRAMRoleARN, SourceOIDC)
	}
	if err != nil {
		return nil, fmt.Errorf("credentials: %s: %w", spec.Source, err)
	}
	return FromCredentialsGo(p), nil
}
