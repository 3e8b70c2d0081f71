package event

// parseTimestamp reads RFC 3339 in the form time.Parse reads it first (its fast path):
// YYYY-MM-DDTHH:MM:SS, up to nine digits of fraction, then Z or ±HH:MM, as unix microseconds. It
// declines any other form, which time.Parse may still take.
func parseTimestamp(s []byte) (int64, bool) {
	if len(s) < len("2006-01-02T15:04:05Z") || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return 0, false
	}
	num := func(b []byte, lo, hi int) (int, bool) {
		n := 0
		for _, c := range b {
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, n >= lo && n <= hi
	}
	year, ok1 := num(s[0:4], 0, 9999)
	month, ok2 := num(s[5:7], 1, 12)
	hour, ok3 := num(s[11:13], 0, 23)
	minute, ok4 := num(s[14:16], 0, 59)
	sec, ok5 := num(s[17:19], 0, 59)
	if !(ok1 && ok2 && ok3 && ok4 && ok5) {
		return 0, false
	}
	day, ok := num(s[8:10], 1, daysIn(month, year))
	if !ok {
		return 0, false
	}
	rest := s[19:]
	micros := 0
	if len(rest) > 0 && rest[0] == '.' {
		n := 1
		for n < len(rest) && '0' <= rest[n] && rest[n] <= '9' {
			n++
		}
		if n == 1 || n > 10 {
			return 0, false // no digit, or more than nine
		}
		for k := 1; k <= 6; k++ {
			micros *= 10
			if k < n {
				micros += int(rest[k] - '0')
			}
		}
		rest = rest[n:]
	}
	offset := 0
	switch {
	case len(rest) == 1 && rest[0] == 'Z':
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		oh, ok1 := num(rest[1:3], 0, 23)
		om, ok2 := num(rest[4:6], 0, 59)
		if !ok1 || !ok2 {
			return 0, false
		}
		offset = (oh*60 + om) * 60
		if rest[0] == '-' {
			offset = -offset
		}
	default:
		return 0, false
	}
	secs := daysSinceEpoch(year, month, day)*86400 + int64(hour*3600+minute*60+sec-offset)
	return secs*1_000_000 + int64(micros), true
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysSinceEpoch is the number of days from 1970-01-01 to the date (proleptic Gregorian), after
// Howard Hinnant's days_from_civil.
func daysSinceEpoch(year, month, day int) int64 {
	y := int64(year)
	if month <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	m := int64(month)
	if m > 2 {
		m -= 3
	} else {
		m += 9
	}
	doy := (153*m+2)/5 + int64(day) - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}
