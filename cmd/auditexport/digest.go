package main

import (
	"cmp"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/spf13/cobra"

	"github.com/auditexport/auditexport/exporter"
	"github.com/auditexport/auditexport/exporter/destination"
	"github.com/auditexport/auditexport/exporter/destination/adls"
	s3dest "github.com/auditexport/auditexport/exporter/destination/s3"
	"github.com/auditexport/auditexport/store"
)

func newDigestCommand(c *cli) *cobra.Command {
	cmd := &cobra.Command{Use: "digest", Short: "Get the digest public key, and verify an export with it",
		Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() }}
	publicKey := &cobra.Command{
		Use: "public-key", Short: "Print the PEM public key that verifies export digests (needs an AUDIT token)", Args: cobra.NoArgs,
		PersistentPreRunE: c.prepare,
		RunE: func(cmd *cobra.Command, _ []string) error {
			raw, err := c.graphQL(cmd.Context(), `{ digestPublicKey }`, nil, "digestPublicKey")
			if err != nil {
				return err
			}
			if c.print.format == "json" {
				return c.print.json(raw)
			}
			var key string
			if err := json.Unmarshal(raw, &key); err != nil {
				return err
			}
			fmt.Fprint(cmd.OutOrStdout(), key)
			return nil
		},
	}
	c.flags.register(publicKey)

	var bucket, path, region, endpoint, keyFile, output, account, fileSystem, sasTokenEnv string
	verify := &cobra.Command{
		Use:   "verify (--bucket B | --storage-account A --file-system F) [--path P] --public-key FILE",
		Short: "Verify an export in S3 or ADLS with your own credentials: signatures, the digest chain, every object's SHA-256",
		Long: `Verify an export with your own credentials: every digest's signature with the public key
(auditexport digest public-key), each configuration's chain of digests, and every listed object's
size and SHA-256; objects in no digest are reported too. Exit 0 when all is well, 1 with the
problems listed.

S3 (--bucket): the AWS SDK's default credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID, …), which need
s3:ListBucket and s3:GetObject.
ADLS (--storage-account and --file-system): a SAS token in the environment variable named by
--sas-token-env (default AZURE_STORAGE_SAS_TOKEN), which needs read and list (sp=rl).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			onADLS := account != "" || fileSystem != ""
			if keyFile == "" || (bucket != "") == onADLS || onADLS && (fileSystem == "" || account == "" && endpoint == "") {
				return usageError{fmt.Errorf("--public-key and either --bucket or --storage-account and --file-system are required")}
			}
			if output != "table" && output != "json" {
				return usageError{fmt.Errorf("--output must be table or json")}
			}
			key, err := readPublicKey(keyFile)
			if err != nil {
				return usageError{err}
			}
			ctx := cmd.Context()
			var reader destination.Reader
			if bucket != "" {
				awsCfg, err := config.LoadDefaultConfig(ctx)
				if err != nil {
					return fmt.Errorf("load AWS configuration: %w", err)
				}
				reader = s3dest.NewReader(s3.NewFromConfig(awsCfg, func(o *s3.Options) {
					if region != "" {
						o.Region = region
					}
					if endpoint != "" {
						o.BaseEndpoint, o.UsePathStyle = aws.String(endpoint), true
					}
				}), bucket)
			} else {
				token := os.Getenv(sasTokenEnv)
				if token == "" {
					return usageError{fmt.Errorf("the environment variable %s holds no SAS token", sasTokenEnv)}
				}
				blobEndpoint := cmp.Or(endpoint, adls.BlobEndpoint(store.ExportConfiguration{StorageAccount: account}))
				if reader, err = adls.NewReader(blobEndpoint, fileSystem, token, nil); err != nil {
					return usageError{err}
				}
			}
			report, err := exporter.VerifyDigests(ctx, reader, path, key)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if output == "json" {
				raw, _ := json.Marshal(report)
				if err := (printer{out: out}).json(raw); err != nil {
					return err
				}
			} else {
				for _, p := range report.Problems {
					fmt.Fprintln(out, "PROBLEM", p)
				}
				fmt.Fprintf(out, "%d digests and %d objects checked, %d problems\n", report.Digests, report.Objects, len(report.Problems))
			}
			if !report.OK() {
				return fmt.Errorf("the export at %s/%s did not verify", reader.Describe(), path)
			}
			return nil
		},
	}
	f := verify.Flags()
	f.StringVar(&bucket, "bucket", "", "S3: the export's bucket")
	f.StringVar(&region, "region", "", "S3: the bucket's region (else the SDK's: AWS_REGION, the profile)")
	f.StringVar(&account, "storage-account", "", "ADLS: the storage account")
	f.StringVar(&fileSystem, "file-system", "", "ADLS: the file system (container)")
	f.StringVar(&sasTokenEnv, "sas-token-env", "AZURE_STORAGE_SAS_TOKEN", "ADLS: the environment variable holding a SAS token with read and list (sp=rl)")
	f.StringVar(&path, "path", "", "the export configuration's path")
	f.StringVar(&endpoint, "endpoint", "", "S3: an S3-compatible server's base URL (path-style addressing); ADLS: the blob service's base URL (default https://ACCOUNT.blob.core.windows.net)")
	f.StringVar(&keyFile, "public-key", "", "the PEM file auditexport digest public-key printed")
	f.StringVarP(&output, "output", "o", "table", "table or json")
	cmd.AddCommand(publicKey, verify)
	return cmd
}

// readPublicKey reads an Ed25519 public key from a PEM "PUBLIC KEY" file.
func readPublicKey(file string) (ed25519.PublicKey, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	key, err := parsePublicKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return key, nil
}

func parsePublicKey(data []byte) (ed25519.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("not a PEM PUBLIC KEY")
	}
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	edKey, ok := key.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("not an Ed25519 key")
	}
	return edKey, nil
}
