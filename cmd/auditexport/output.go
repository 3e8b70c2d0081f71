package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// What the CLI asks for, and decodes for its tables. JSON output prints the GraphQL data as the
// server sent it, so its field names are the API's.
const (
	configFields = `id name interval enabled connectionStatus connectionCheckedAt createdBy createdAt updatedBy updatedAt
		pendingEvents skippedEvents nextExportAt
		endpointConfiguration { __typename
			... on S3AccessKeyEndpointConfiguration { bucket path region accessKeyId endpoint serverSideEncryption sseKmsKeyId }
			... on S3AssumedRoleEndpointConfiguration { bucket path region roleArn externalId endpoint serverSideEncryption sseKmsKeyId }
			... on AdlsSasTokenEndpointConfiguration { storageAccount fileSystem path endpoint } }
		lastExport { ` + jobFields + ` }`
	jobFields   = `id exportConfigurationId status startTimestamp endTimestamp eventCount objectCount bytes attempts failureReason nextAttemptTimestamp skippedEvents`
	taskFields  = `id key startTimestamp endTimestamp attempts offset limit bytes status failureReason sha256`
	tokenFields = `name permissions createdBy createdAt`
)

type apiToken struct {
	Name        string   `json:"name"`
	Permissions []string `json:"permissions"`
	CreatedBy   *string  `json:"createdBy"`
	CreatedAt   string   `json:"createdAt"`
}

type exportConfig struct {
	ID                    string  `json:"id"`
	Name                  *string `json:"name"`
	Interval              string  `json:"interval"`
	Enabled               bool    `json:"enabled"`
	ConnectionStatus      string  `json:"connectionStatus"`
	ConnectionCheckedAt   *string `json:"connectionCheckedAt"`
	CreatedBy             *string `json:"createdBy"`
	CreatedAt             string  `json:"createdAt"`
	UpdatedBy             *string `json:"updatedBy"`
	UpdatedAt             string  `json:"updatedAt"`
	PendingEvents         int     `json:"pendingEvents"`
	SkippedEvents         int     `json:"skippedEvents"`
	NextExportAt          *string `json:"nextExportAt"`
	EndpointConfiguration struct {
		Typename    string  `json:"__typename"`
		Bucket      string  `json:"bucket"`
		Path        *string `json:"path"`
		Region      string  `json:"region"`
		AccessKeyID string  `json:"accessKeyId"`
		RoleArn     string  `json:"roleArn"`
		ExternalID  string  `json:"externalId"`
		Endpoint    *string `json:"endpoint"`
		// ServerSideEncryption is the API's enum: AES256 or AWS_KMS.
		ServerSideEncryption *string `json:"serverSideEncryption"`
		SseKmsKeyID          *string `json:"sseKmsKeyId"`
		StorageAccount       string  `json:"storageAccount"`
		FileSystem           string  `json:"fileSystem"`
	} `json:"endpointConfiguration"`
	LastExport *exportJob `json:"lastExport"`
}

func (c exportConfig) kind() string {
	switch c.EndpointConfiguration.Typename {
	case "S3AssumedRoleEndpointConfiguration":
		return typeAssumedRole
	case "AdlsSasTokenEndpointConfiguration":
		return typeADLS
	}
	return typeAccessKey
}

// location is where the configuration exports: bucket/path, or storageAccount/fileSystem/path.
func (c exportConfig) location() string {
	ep := c.EndpointConfiguration
	if c.kind() == typeADLS {
		return ep.StorageAccount + "/" + ep.FileSystem + "/" + str(ep.Path)
	}
	return ep.Bucket + "/" + str(ep.Path)
}

type exportJob struct {
	ID                    string  `json:"id"`
	ExportConfigurationID string  `json:"exportConfigurationId"`
	Status                string  `json:"status"`
	StartTimestamp        *string `json:"startTimestamp"`
	EndTimestamp          *string `json:"endTimestamp"`
	EventCount            int     `json:"eventCount"`
	ObjectCount           int     `json:"objectCount"`
	Bytes                 int     `json:"bytes"`
	Attempts              int     `json:"attempts"`
	FailureReason         *string `json:"failureReason"`
	NextAttemptTimestamp  *string `json:"nextAttemptTimestamp"`
}

type exportTask struct {
	ID             string  `json:"id"`
	Key            string  `json:"key"`
	StartTimestamp *string `json:"startTimestamp"`
	EndTimestamp   *string `json:"endTimestamp"`
	Attempts       int     `json:"attempts"`
	Offset         int     `json:"offset"`
	Limit          int     `json:"limit"`
	Bytes          int     `json:"bytes"`
	Status         string  `json:"status"`
	FailureReason  *string `json:"failureReason"`
	SHA256         *string `json:"sha256"`
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// printer writes one result as a table or as JSON.
type printer struct {
	out    io.Writer
	format string
}

// json prints the GraphQL data as sent (same fields, same order), indented.
func (p printer) json(raw json.RawMessage) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return err
	}
	buf.WriteByte('\n')
	_, err := p.out.Write(buf.Bytes())
	return err
}

func (p printer) table(header string, rows [][]string) {
	w := tabwriter.NewWriter(p.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, header)
	for _, r := range rows {
		fmt.Fprintln(w, strings.Join(r, "\t"))
	}
	w.Flush()
}

// config prints one configuration: JSON as sent, or its fields one per line.
func (p printer) config(raw json.RawMessage) error {
	if p.format == "json" {
		return p.json(raw)
	}
	var c exportConfig
	if err := json.Unmarshal(raw, &c); err != nil {
		return err
	}
	ep := c.EndpointConfiguration
	rows := [][]string{
		{"id", c.ID}, {"name", str(c.Name)}, {"type", c.kind()}, {"interval", c.Interval},
		{"enabled", fmt.Sprint(c.Enabled)}, {"connectionStatus", c.ConnectionStatus}, {"connectionCheckedAt", str(c.ConnectionCheckedAt)},
	}
	switch c.kind() {
	case typeADLS:
		rows = append(rows, []string{"storageAccount", ep.StorageAccount}, []string{"fileSystem", ep.FileSystem},
			[]string{"path", str(ep.Path)}, []string{"endpoint", str(ep.Endpoint)})
	case typeAccessKey:
		rows = append(rows, s3Rows(c)...)
		rows = append(rows, []string{"accessKeyId", ep.AccessKeyID})
	default:
		rows = append(rows, s3Rows(c)...)
		rows = append(rows, []string{"roleArn", ep.RoleArn}, []string{"externalId", ep.ExternalID})
	}
	rows = append(rows, []string{"pendingEvents", fmt.Sprint(c.PendingEvents)}, []string{"skippedEvents", fmt.Sprint(c.SkippedEvents)},
		[]string{"nextExportAt", str(c.NextExportAt)})
	if j := c.LastExport; j != nil {
		rows = append(rows, []string{"lastExport", fmt.Sprintf("%s %s, %d events, %d objects", j.ID, j.Status, j.EventCount, j.ObjectCount)})
	}
	rows = append(rows, []string{"created", c.CreatedAt + " by " + str(c.CreatedBy)}, []string{"updated", c.UpdatedAt + " by " + str(c.UpdatedBy)})
	p.table("FIELD\tVALUE", rows)
	return nil
}

// s3Rows are the fields every S3 configuration has.
func s3Rows(c exportConfig) [][]string {
	ep := c.EndpointConfiguration
	return [][]string{{"bucket", ep.Bucket}, {"path", str(ep.Path)}, {"region", ep.Region}, {"endpoint", str(ep.Endpoint)},
		{"serverSideEncryption", str(ep.ServerSideEncryption)}, {"sseKmsKeyId", str(ep.SseKmsKeyID)}}
}

func (p printer) configs(raw json.RawMessage) error {
	return printRows(p, raw, false, "ID\tNAME\tTYPE\tINTERVAL\tENABLED\tDESTINATION\tSTATUS\tLAST EXPORT", func(c exportConfig) []string {
		last := ""
		if c.LastExport != nil {
			last = c.LastExport.Status + " " + str(c.LastExport.EndTimestamp)
		}
		return []string{c.ID, str(c.Name), c.kind(), c.Interval, fmt.Sprint(c.Enabled),
			c.location(), shorten(c.ConnectionStatus, 60), last}
	})
}

func (p printer) jobs(raw json.RawMessage, single bool) error {
	return printRows(p, raw, single, "ID\tSTATUS\tSTARTED\tENDED\tEVENTS\tOBJECTS\tBYTES\tATTEMPTS\tFAILURE", func(j exportJob) []string {
		return []string{j.ID, j.Status, str(j.StartTimestamp), str(j.EndTimestamp), fmt.Sprint(j.EventCount),
			fmt.Sprint(j.ObjectCount), fmt.Sprint(j.Bytes), fmt.Sprint(j.Attempts), shorten(str(j.FailureReason), 60)}
	})
}

func (p printer) tasks(raw json.RawMessage) error {
	return printRows(p, raw, false, "KEY\tSTATUS\tOFFSET\tLIMIT\tBYTES\tATTEMPTS\tFAILURE", func(t exportTask) []string {
		return []string{t.Key, t.Status, fmt.Sprint(t.Offset), fmt.Sprint(t.Limit), fmt.Sprint(t.Bytes), fmt.Sprint(t.Attempts), shorten(str(t.FailureReason), 60)}
	})
}

func (p printer) tokens(raw json.RawMessage, single bool) error {
	return printRows(p, raw, single, "NAME\tPERMISSIONS\tCREATED BY\tCREATED", func(t apiToken) []string {
		return []string{t.Name, strings.Join(t.Permissions, ","), str(t.CreatedBy), t.CreatedAt}
	})
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

// printRows prints raw, the GraphQL data of one T (single) or a list of them: as sent for JSON,
// else as a table under header, one row per T.
func printRows[T any](p printer, raw json.RawMessage, single bool, header string, row func(T) []string) error {
	if p.format == "json" {
		return p.json(raw)
	}
	var items []T
	if single {
		items = make([]T, 1)
		if err := json.Unmarshal(raw, &items[0]); err != nil {
			return err
		}
	} else if err := json.Unmarshal(raw, &items); err != nil {
		return err
	}
	rows := make([][]string, len(items))
	for i, item := range items {
		rows[i] = row(item)
	}
	p.table(header, rows)
	return nil
}
